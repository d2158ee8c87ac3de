"""A timestamped results directory, and the part of the lab's audit log written during the run."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from gateway.recorder import ALERTS_FILE, AUDIT_FILE


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


@dataclass
class ResultsDirectory:
    path: Path
    audit_dir: Path | None = None  # the lab gateway's audit directory, if readable here
    offsets: dict[str, int] = field(default_factory=dict)

    @classmethod
    def new(cls, root: Path, started: float, audit_dir: Path | None = None) -> ResultsDirectory:
        """`root/<UTC time>` (suffixed if taken); remembers where the audit files end now."""
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(started))
        path = root / stamp
        n = 1
        while path.exists():
            n += 1
            path = root / f"{stamp}-{n}"
        path.mkdir(parents=True)
        offsets = {}
        if audit_dir is not None:
            offsets = {name: _size(audit_dir / name) for name in (AUDIT_FILE, ALERTS_FILE)}
        return cls(path, audit_dir, offsets)

    def copy_audit(self) -> dict[str, str]:
        """Copy what the lab's gateway logged since `new()` into `audit/`; the relative paths.

        The copy is a contiguous slice of the lab's hash chain (its first record links to the
        last one before the run); the chain is verified whole, in the lab's audit directory."""
        if self.audit_dir is None:
            return {}
        target = self.path / "audit"
        target.mkdir(exist_ok=True)
        written: dict[str, str] = {}
        for name, start in self.offsets.items():
            source = self.audit_dir / name
            if not source.exists():
                continue
            with source.open("rb") as src, (target / name).open("wb") as dst:
                src.seek(start)
                shutil.copyfileobj(src, dst)
            written[name.removesuffix(".jsonl")] = f"audit/{name}"
        return written

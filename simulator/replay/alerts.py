"""Which anomaly alerts a scenario raised: the gateway's alerts file, read from where it stood
when the scenario started, for the scenario's client (scenarios run one at a time)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from pathlib import Path

from gateway.recorder import ALERTS_FILE
from simulator.replay.model import ExpectationResult

SETTLE_S = 3.0  # the gateway writes alerts through a queue: wait this long for expected ones


class AlertWatch:
    """Marks the alerts file's end at `start()`; `raised()` reads what was appended since."""

    def __init__(self, audit_dir: Path) -> None:
        self.path = audit_dir / ALERTS_FILE
        self.offset = 0

    def start(self) -> None:
        self.offset = self.path.stat().st_size if self.path.exists() else 0

    def _read(self, client_id: str) -> list[str]:
        if not self.path.exists():
            return []
        with self.path.open("rb") as handle:
            handle.seek(self.offset)
            data = handle.read()
        detectors: list[str] = []
        for line in data.splitlines():
            try:
                alert = json.loads(line)
            except ValueError:
                continue  # a line still being written
            if isinstance(alert, dict) and alert.get("client_id") == client_id:
                detectors.append(str(alert.get("detector")))
        return detectors

    def raised(
        self, client_id: str, expected: Iterable[str], settle_s: float = SETTLE_S
    ) -> list[str]:
        """Detector names of the alerts raised for `client_id` since `start()`, in order; waits
        up to `settle_s` for the expected ones to be written."""
        wanted = set(expected)
        deadline = time.monotonic() + (settle_s if wanted else 0.5)
        while True:
            found = self._read(client_id)
            if wanted <= set(found) or time.monotonic() >= deadline:
                return found
            time.sleep(0.2)


def alert_expectation(expected: Iterable[str], raised: Iterable[str]) -> ExpectationResult | None:
    """Every expected detector must have fired; others firing too is reported, not a failure
    (a probing scenario may well trip more than the detector it is written for)."""
    want = sorted(set(expected))
    got = sorted(set(raised))
    if not want:
        return None
    missing = [d for d in want if d not in got]
    extra = [d for d in got if d not in want]
    evidence = f"raised: {', '.join(got) or 'none'}"
    if missing:
        evidence += f"; missing: {', '.join(missing)}"
    if extra:
        evidence += f"; also raised: {', '.join(extra)}"
    return ExpectationResult(
        "alerts", ", ".join(want), ", ".join(got) or "none", not missing, evidence
    )

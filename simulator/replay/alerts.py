"""What the gateway's audit trail shows of one scenario run: the audit records and the anomaly
alerts of the scenario's client, read from where the audit and alerts files stood when the
scenario started (scenarios run one at a time). The C06 verdict and the alert expectations are
judged from them."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

from gateway.recorder import ALERTS_FILE, AUDIT_FILE
from simulator.replay.model import ExpectationResult
from simulator.replay.verdict import AuditEvidence

SETTLE_S = 3.0  # the gateway writes alerts through a queue: wait this long for expected ones
POLL_S = 0.2
T = TypeVar("T")


class AlertWatch:
    """Marks the audit and alerts files' ends at `start()`; reads what was appended since."""

    def __init__(self, audit_dir: Path) -> None:
        self.path = audit_dir / ALERTS_FILE
        self.audit_path = audit_dir / AUDIT_FILE
        self.offset = 0
        self.audit_offset = 0

    def start(self) -> None:
        self.offset = _size(self.path)
        self.audit_offset = _size(self.audit_path)

    def _read(self, client_id: str, served_only: bool = False) -> list[str]:
        return [
            str(alert.get("detector"))
            for alert in _appended(self.path, self.offset)
            if alert.get("client_id") == client_id and not (served_only and _refused(alert))
        ]

    def _recorded(self, client_id: str) -> int:
        return sum(
            1
            for line in _appended(self.audit_path, self.audit_offset)
            if line.get("kind") == "request" and line.get("client_id") == client_id
        )

    def raised(
        self, client_id: str, expected: Iterable[str], settle_s: float = SETTLE_S
    ) -> list[str]:
        """Detector names of the alerts raised for `client_id` since `start()`, in order; waits
        up to `settle_s` for the expected ones to be written."""
        wanted = set(expected)
        return _settled(
            lambda: self._read(client_id),
            lambda found: wanted <= set(found),
            settle_s if wanted else 0.5,
        )

    def evidence(
        self, client_id: str, sent: int, anomalous: bool, settle_s: float = SETTLE_S
    ) -> AuditEvidence:
        """The audit records and alerts of `client_id` since `start()`; waits up to `settle_s`
        for a record of each of the `sent` requests (and, after `anomalous` behaviour, for an
        alert): the gateway writes both through queues. Alerts on attempts the gateway refused
        (`served: false`: an out-of-profile probe) are left out: the refusing control judges
        those; C06 is about behaviour that was carried out."""
        recorded, alerts = _settled(
            lambda: (self._recorded(client_id), self._read(client_id, served_only=True)),
            lambda seen: seen[0] >= sent and bool(seen[1] or not anomalous),
            settle_s,
        )
        return AuditEvidence(True, sent, recorded, tuple(alerts))


def _settled(read: Callable[[], T], done: Callable[[T], bool], settle_s: float) -> T:
    """`read()` until `done` says its value is complete or `settle_s` has passed (the gateway
    writes records and alerts through queues); the last value read."""
    deadline = time.monotonic() + settle_s
    while True:
        value = read()
        if done(value) or time.monotonic() >= deadline:
            return value
        time.sleep(POLL_S)


def _refused(alert: dict[str, object]) -> bool:
    evidence = alert.get("evidence")
    return isinstance(evidence, dict) and evidence.get("served") is False


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def _appended(path: Path, offset: int) -> list[dict[str, object]]:
    """The JSON objects of the lines written to `path` after `offset`."""
    if not path.exists():
        return []
    with path.open("rb") as handle:
        handle.seek(offset)
        data = handle.read()
    found = []
    for line in data.splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue  # a line still being written
        if isinstance(item, dict):
            found.append(item)
    return found


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

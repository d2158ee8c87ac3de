"""What the gateway's audit trail shows of one scenario run: the audit records and the anomaly
alerts of the scenario's client, read from where the audit and alerts files stood when the
scenario started (scenarios run one at a time). The C06 verdict and the alert expectations are
judged from them."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from pathlib import Path

from gateway.recorder import ALERTS_FILE, AUDIT_FILE
from simulator.replay.model import ExpectationResult
from simulator.replay.verdict import AuditEvidence

SETTLE_S = 3.0  # the gateway writes alerts through a queue: wait this long for expected ones


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
        deadline = time.monotonic() + (settle_s if wanted else 0.5)
        while True:
            found = self._read(client_id)
            if wanted <= set(found) or time.monotonic() >= deadline:
                return found
            time.sleep(0.2)

    def evidence(
        self, client_id: str, sent: int, anomalous: bool, settle_s: float = SETTLE_S
    ) -> AuditEvidence:
        """The audit records and alerts of `client_id` since `start()`; waits up to `settle_s`
        for a record of each of the `sent` requests (and, after `anomalous` behaviour, for an
        alert): the gateway writes both through queues. Alerts on attempts the gateway refused
        (`served: false`: an out-of-profile probe) are left out: the refusing control judges
        those; C06 is about behaviour that was carried out."""
        deadline = time.monotonic() + settle_s
        while True:
            recorded = self._recorded(client_id)
            alerts = self._read(client_id, served_only=True)
            settled = recorded >= sent and (alerts or not anomalous)
            if settled or time.monotonic() >= deadline:
                return AuditEvidence(True, sent, recorded, tuple(alerts))
            time.sleep(0.2)


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

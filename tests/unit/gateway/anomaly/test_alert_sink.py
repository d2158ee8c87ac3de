"""AlertSink and observe_and_log: alerts in their own file and in the audit chain."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.anomaly import (
    AlertSink,
    AnomalyEngine,
    VolumeConfig,
    VolumeDetector,
    observe_and_log,
    read_alerts,
)
from gateway.audit import AuditLog, verify_chain
from tests.unit.gateway.anomaly.helpers import rec


@pytest.mark.anyio
async def test_alerts_reach_the_alerts_file_and_the_chain_after_their_request(
    tmp_path: Path,
) -> None:
    audit_path, alerts_path = tmp_path / "audit.jsonl", tmp_path / "alerts.jsonl"
    log = AuditLog(audit_path)
    sink = AlertSink(alerts_path, log)
    engine = AnomalyEngine([VolumeDetector(VolumeConfig(max_requests=2))])
    logged = [observe_and_log(rec(i, request_id=f"r{i}"), log, engine, sink) for i in range(4)]
    await sink.aclose()
    await log.aclose()

    assert [r.alerts for r in logged] == [(), (), ("volume-1",), ()]
    alerts = read_alerts(alerts_path)
    assert len(alerts) == 1
    assert alerts[0]["id"] == "volume-1" and alerts[0]["detector"] == "volume"
    assert list(alerts[0]) == [
        "id",
        "ts",
        "detector",
        "severity",
        "client_id",
        "token_id",
        "tenant",
        "message",
        "evidence",
    ]

    lines = [json.loads(line) for line in audit_path.read_text().splitlines()]
    assert [(e["kind"], e.get("request_id")) for e in lines] == [
        ("request", "r0"),
        ("request", "r1"),
        ("request", "r2"),
        ("alert", None),
        ("request", "r3"),
    ]
    assert lines[2]["alerts"] == ["volume-1"]
    assert lines[3]["event"] == alerts[0]
    assert lines[3]["ts"] == alerts[0]["ts"]
    assert verify_chain(audit_path).ok
    assert sink.emitted == 1


@pytest.mark.anyio
async def test_a_sink_without_a_file_only_feeds_the_chain(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    sink = AlertSink(None, log)
    engine = AnomalyEngine([VolumeDetector(VolumeConfig(max_requests=1))])
    for i in range(3):
        observe_and_log(rec(i), log, engine, sink)
    await sink.aclose()
    await log.aclose()
    kinds = [json.loads(x)["kind"] for x in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert kinds == ["request", "request", "alert", "request"]

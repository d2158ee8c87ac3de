"""The lab's simulated clock header (LAB ONLY): parsing, policy switch, the audit sink."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from gateway.clock import ClockError, SimulatedClock, parse_instant, simulated_clock
from gateway.config import GatewayConfig
from gateway.context import RequestContext
from gateway.policy import Policy, load_policy
from gateway.recorder import GatewayAudit
from gateway.settings import GatewaySettings
from gateway.token_verifier import VerifiedToken
from labcore.scopes import parse_scopes


def test_parse_instant_needs_an_offset() -> None:
    assert (
        parse_instant("2026-11-29T03:00:00Z") == datetime(2026, 11, 29, 3, tzinfo=UTC).timestamp()
    )
    assert parse_instant("2026-11-28T22:00:00-05:00") == parse_instant("2026-11-29T03:00:00Z")
    assert parse_instant(" 2026-11-29T03:00:00.250+00:00 ") % 1 == pytest.approx(0.25)
    for bad in ("2026-11-29T03:00:00", "2026-11-29", "yesterday", "", "1764385200", "T" * 100):
        with pytest.raises(ClockError, match="not an ISO-8601 instant"):
            parse_instant(bad)


@given(st.text(max_size=80))
def test_any_header_value_is_an_instant_or_a_clock_error(value: str) -> None:
    try:
        result = parse_instant(value)
    except ClockError as exc:
        assert "ISO-8601" in str(exc)
    else:
        assert isinstance(result, float)


def test_clock_reads_its_header_only() -> None:
    clock = SimulatedClock("X-Fhirlab-Clock")
    assert clock.read({}) is None
    assert clock.read({"x-fhirlab-clock": "2026-11-29T03:00:00Z"}) == parse_instant(
        "2026-11-29T03:00:00Z"
    )
    with pytest.raises(ClockError, match="x-fhirlab-clock: simulated clock 'soon'"):
        clock.read({"x-fhirlab-clock": "soon"})
    assert simulated_clock(None) is None


def test_policy_clock_header_is_off_unless_named() -> None:
    assert Policy(schema_version=1, controls={}).clock_header is None
    policy = Policy(
        schema_version=1,
        controls={},
        anomaly={"clock_header": "X-Fhirlab-Clock", "volume": {"threshold": 5}},
    )
    assert policy.clock_header == "X-Fhirlab-Clock"
    assert policy.detectors == {"volume": {"threshold": 5}}
    with pytest.raises(ValidationError, match="clock_header must be a header name"):
        Policy(schema_version=1, controls={}, anomaly={"clock_header": "bad header"})
    with pytest.raises(ValidationError, match=r"anomaly\.volume must be a mapping"):
        Policy(schema_version=1, controls={}, anomaly={"volume": 5})


def test_the_lab_policy_enables_the_clock() -> None:
    assert load_policy().clock_header == "X-Fhirlab-Clock"


# Saturday 28 November 2026, 03:00 in New York (off hours); the real time is whenever tests run
SATURDAY_3AM = "2026-11-28T03:00:00-05:00"


def _ctx(n: int, token_id: str, simulated: float | None) -> RequestContext:
    ctx = RequestContext(f"r{n}", "GET", "/fhir/Appointment", "patient=p1")
    ctx.token = VerifiedToken(
        token_id=token_id,
        issuer="https://auth.example/realms/a",
        tenant="a",
        client_id="scheduling-assistant",
        subject="u1",
        scopes=parse_scopes("patient/Appointment.rs"),
        patient="p1",
        encounter=None,
        issued_at=None,
        expires_at=0,
        jti=None,
    )
    ctx.status = 200
    ctx.simulated_time = simulated
    return ctx


def _audit(tmp_path: Path, clock_header: str | None) -> GatewayAudit:
    policy = Policy(
        schema_version=1,
        controls={},
        anomaly={"clock_header": clock_header, "off_hours": {"threshold": 3}},
    )
    config = GatewayConfig(settings=GatewaySettings(), policy=policy)
    return GatewayAudit.from_config(config, tmp_path)


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_stamped_requests_are_judged_at_the_simulated_instant(tmp_path: Path) -> None:
    audit = _audit(tmp_path, "X-Fhirlab-Clock")
    night = parse_instant(SATURDAY_3AM)
    for n in range(5):
        audit.record(_ctx(n, "run-1", night + n), 1.0)
    for n in range(5, 10):  # a second run replays the same night: a timeline of its own
        audit.record(_ctx(n, "run-2", night + n), 1.0)
    asyncio.run(audit.aclose())
    alerts = _lines(tmp_path / "alerts.jsonl")
    assert [a["id"] for a in alerts] == ["sim1.off_hours-1", "sim2.off_hours-1"]
    assert alerts[0]["evidence"]["simulated_time"] == "2026-11-28T08:00:03+00:00"
    assert alerts[0]["evidence"]["local_time"] == "2026-11-28T03:00:03-05:00"
    assert abs(alerts[0]["ts"] - night) > 3600  # the real time of the alert
    records = [r for r in _lines(tmp_path / "audit.jsonl") if r.get("kind") != "alert"]
    assert [r["simulated_time"] for r in records] == [night + n for n in range(10)]
    assert all(r["ts"] != r["simulated_time"] for r in records)


def test_without_the_clock_policy_stamps_are_ignored(tmp_path: Path) -> None:
    audit = _audit(tmp_path, None)
    assert audit.simulated is None
    night = parse_instant(SATURDAY_3AM)
    # the sink alone never trusts a stamp the gateway did not read; real time decides
    for n in range(5):
        audit.record(_ctx(n, "run-1", night + n), 1.0)
    asyncio.run(audit.aclose())
    assert all(a["id"].startswith("off_hours-") for a in _lines(tmp_path / "alerts.jsonl"))

"""The fast lane's grants (`gateway/fast_lane.py`): what the stage pipeline, run on synthetic
requests, lets the compiled front serve for a token, and the records of what it served."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from gateway.__main__ import main as gateway_main
from gateway.app import mode_of
from gateway.controls import Mode
from gateway.fast_lane import (
    _EVENTS_PIECE,
    BINARY_ENV,
    INELIGIBLE_S,
    MAX_GRANT_S,
    FastLane,
    LaneGrants,
    lane_binary,
    to_record,
)
from gateway.pipeline import Pipeline
from gateway.policy import Policy, load_policy
from gateway.stages.client_policy import ClientPolicyStage
from gateway.stages.compartment import CompartmentStage
from gateway.stages.operations import OperationsStage
from gateway.stages.rate_limit import RateLimitStage
from gateway.stages.scopes import ScopesStage
from gateway.stages.tenant import TenantStage
from gateway.stages.token import TokenStage
from gateway.token_verifier import VerifiedToken
from labcore.errors import LabError
from tests.unit.gateway.stage_kit import verified

NOW = 1_000.0
TAG = ["_tag", "https://fhirlab.dev/tenant|a"]


class FakeVerifier:
    """Verifies one token string; the introspection answer holds until `active_until`."""

    def __init__(self, token: VerifiedToken | None, active_until: float | None = NOW + 10) -> None:
        self.token = token
        self.until = active_until

    async def verify(self, bearer: str) -> VerifiedToken:
        if self.token is None or bearer != "good":
            from gateway.denial import unauthorized

            raise unauthorized("the token's signature does not verify")
        return self.token

    async def is_active(self, bearer: str, token: VerifiedToken) -> bool:
        return True

    def active_until(self, bearer: str) -> float | None:
        return self.until


def policy(**modes: Mode) -> Policy:
    base = load_policy()
    every = {c: Mode.ENFORCE for c in base.controls}
    data = base.with_modes({**every, **modes}).model_dump()
    data["rate_limit"]["enabled"] = False
    return Policy.model_validate(data)


def grants(policy_: Policy, verifier: FakeVerifier) -> LaneGrants:
    stages = [
        TokenStage(verifier, {}),  # type: ignore[arg-type]
        RateLimitStage(policy_.rate_limit),
        ClientPolicyStage(policy_.client_policy),
        TenantStage(None),
        ScopesStage(policy_.client_policy),
        OperationsStage(policy_.operations),
        CompartmentStage(None),
    ]
    pipeline = Pipeline(stages, mode_of(policy_))
    return LaneGrants(pipeline, verifier, policy_, "/fhir", clock=lambda: NOW)  # type: ignore[arg-type]


def grant(policy_: Policy, verifier: FakeVerifier, bearer: str = "good") -> dict[str, Any]:
    return asyncio.run(grants(policy_, verifier).grant(bearer))


def patient_token(scope: str = "launch/patient patient/Observation.rs patient/Patient.r"):
    return verified(scope, patient="pat-1", issued_at=900, expires_at=1_600)


def test_a_patient_token_is_granted_its_reads_and_searches_with_what_the_pipeline_adds() -> None:
    got = grant(policy(), FakeVerifier(patient_token()))
    assert got["eligible"] is True
    assert got["patient"] == "pat-1" and got["tenant"] == "a"
    assert got["checks"] == ["C05", "C08", "C10"]
    assert got["read"] == ["Observation", "Patient"]
    # the tenant's tag, then the patient's narrowing (the stages' order); pinned: the tag alone
    assert got["search"] == {
        "Observation": {"narrow": [TAG, ["subject", "Patient/pat-1"]], "pinned": [TAG]}
    }
    assert got["max_count"] == 200
    assert got["valid_until"] == NOW + 10  # the introspection's answer holds that long


def test_a_grant_ends_with_the_token_or_the_longest_grant() -> None:
    short = verified("launch/patient patient/Observation.rs", expires_at=int(NOW) + 5)
    assert grant(policy(), FakeVerifier(short, None))["valid_until"] == NOW  # C09: ask again
    assert grant(policy(C09=Mode.OFF), FakeVerifier(short, None))["valid_until"] == NOW + 5
    long = verified("launch/patient patient/Observation.rs", issued_at=1_000, expires_at=1_800)
    off = policy(C09=Mode.OFF, C02=Mode.OFF)
    assert grant(off, FakeVerifier(long))["valid_until"] == NOW + MAX_GRANT_S


def test_types_the_pipeline_refuses_or_conditions_are_not_granted() -> None:
    # a wildcard is refused by C05, a constrained scope needs a filter the front does not do
    scope = "launch/patient patient/*.rs patient/Condition.rs?category=problem-list-item"
    got = grant(policy(), FakeVerifier(patient_token(scope)))
    assert got["eligible"] is False


def test_another_patients_resources_are_checked_by_the_front_only_as_the_pipeline_would() -> None:
    got = grant(policy(C08=Mode.OFF), FakeVerifier(patient_token()))
    assert got["checks"] == ["C05", "C10"]
    assert got["search"]["Observation"] == {"narrow": [TAG], "pinned": [TAG]}


def limited() -> Policy:
    data = policy().model_dump()
    data["rate_limit"]["enabled"] = True
    return Policy.model_validate(data)


@pytest.mark.parametrize(
    ("policy_", "why"),
    [(policy(C08=Mode.MONITOR), "monitor"), (limited(), "rate limit")],
)
def test_a_policy_the_front_cannot_follow_keeps_every_token_off_it(
    policy_: Policy, why: str
) -> None:
    lane = grants(policy_, FakeVerifier(patient_token()))
    assert lane.why_not is not None and why in lane.why_not
    got = asyncio.run(lane.grant("good"))
    assert got == {"eligible": False, "valid_until": NOW + INELIGIBLE_S}


def test_a_token_that_does_not_verify_is_not_granted() -> None:
    assert grant(policy(), FakeVerifier(patient_token()), bearer="forged")["eligible"] is False
    assert grant(policy(), FakeVerifier(None))["eligible"] is False


def test_what_the_front_served_is_recorded_as_the_pipeline_would_record_it() -> None:
    token = patient_token()
    lane = grants(policy(), FakeVerifier(token))
    got = asyncio.run(lane.grant("good"))
    records = []
    front = FastLane(None, {"secret": "s"}, lane, records.append)  # type: ignore[arg-type]
    line = (
        b'{"ts": 1.5, "request_id": "abc", "method": "GET", "path": "/fhir/Observation",'
        b' "query": "_count=2", "grant": "%s", "interaction": "search-type",'
        b' "resource_type": "Observation", "status": 200, "result_count": 2,'
        b' "patients": ["pat-1"], "latency_ms": 1.25}' % got["grant"].encode()
    )
    front._event(line)
    front._event(b"not json")
    assert len(records) == 1
    record = records[0]
    assert record == to_record(
        {
            "ts": 1.5,
            "request_id": "abc",
            "method": "GET",
            "path": "/fhir/Observation",
            "query": "_count=2",
            "interaction": "search-type",
            "resource_type": "Observation",
            "status": 200,
            "result_count": 2,
            "patients": ["pat-1"],
            "latency_ms": 1.25,
        },
        token,
    )
    assert (record.client_id, record.patient_context, record.tenant) == ("ai-client", "pat-1", "a")
    assert (record.decision, record.status, record.result_count) == ("allow", 200, 2)


def test_a_batch_of_lines_is_read_in_pieces_with_the_event_loop_free_between_them() -> None:
    token = patient_token()
    lane = grants(policy(), FakeVerifier(token))
    records: list[Any] = []
    front = FastLane(None, {"secret": "s"}, lane, records.append)  # type: ignore[arg-type]
    line = (
        '{"ts": 1.5, "request_id": "r%04d", "method": "GET", "path": "/fhir/Patient/pat-1",'
        ' "query": "", "grant": "%s", "interaction": "read", "resource_type": "Patient",'
        ' "status": 200, "result_count": 1, "patients": ["pat-1"], "latency_ms": 0.5}\n'
    )

    async def run() -> list[int]:
        got = await lane.grant("good")
        batch = "".join(line % (n, got["grant"]) for n in range(300)).encode()
        assert len(batch) > 3 * _EVENTS_PIECE  # several pieces, lines cut between them
        stream = asyncio.StreamReader()
        stream.feed_data(batch)
        stream.feed_eof()
        front._proc = type("Front", (), {"stdout": stream})()  # type: ignore[assignment]
        seen: list[int] = []

        async def other_request() -> None:  # another task on the same event loop
            for _ in range(3):
                seen.append(len(records))
                await asyncio.sleep(0)

        await asyncio.gather(front._read_events(), other_request())
        return seen

    seen = asyncio.run(run())
    assert [r.request_id for r in records] == [f"r{n:04d}" for n in range(300)]
    assert 0 < seen[1] < 300  # it ran while the batch was being read, not after


def test_a_missing_executable_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(BINARY_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(LabError, match="make fast-lane"):
        lane_binary()


def test_the_fast_lane_needs_the_policy_gateway(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        gateway_main(["--port", "0", "--fast-lane"])
    assert exited.value.code == 2
    assert "--fast-lane needs the policy gateway (--keycloak)" in capsys.readouterr().err

"""What a saturation run calls lost: the checks themselves (the run is an integration test)."""

from __future__ import annotations

import signal
from collections import Counter

from gateway.audit import ChainReport
from simulator.load.saturation import SaturationResult


def whole(**kw: object) -> SaturationResult:
    result = SaturationResult(clients=4, seconds=2.0, answers=Counter({200: 90, 403: 10}))
    result.audit_records = 100
    result.chain = ChainReport(True, 102, None, "102 entries verified")
    for key, value in kw.items():
        setattr(result, key, value)
    return result


def test_a_run_with_a_record_per_answer_and_a_sound_chain_lost_nothing() -> None:
    assert whole().problems() == []
    assert whole().rate == 50.0
    stopped = whole(stopped_after_s=1.0, exit_code=-signal.SIGTERM)  # uvicorn's clean stop
    assert stopped.problems() == []


def test_a_missing_record_a_broken_chain_or_a_5xx_is_a_problem() -> None:
    assert "99 audit records" in whole(audit_records=99).problems()[0]
    broken = ChainReport(False, 40, 41, "hash does not match the content (line edited)")
    assert "line edited" in whole(chain=broken).problems()[0]
    five = whole(answers=Counter({200: 99, 502: 1}))
    assert any("5xx" in p for p in five.problems())
    assert "never answered" in whole(broken=1).problems()[0]
    assert "exited with 1" in whole(stopped_after_s=1.0, exit_code=1).problems()[0]

"""Monitor mode records and changes nothing: the request goes upstream as with the control off.

An enforced C08 narrows a patient token's search to its patient, an enforced C10 stamps the
tenant on writes and narrows searches to it, an enforced C12 caps `_count`; a monitored one only
records. What a monitored control refuses is a `monitor` finding, and what its response checks
would withhold is recorded, not withheld.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from gateway.context import RequestContext
from gateway.controls import Mode
from gateway.denial import Denial
from gateway.pipeline import Pipeline
from gateway.policy import OperationsPolicy
from gateway.stages import Check, Stage
from gateway.stages.compartment import CompartmentStage
from gateway.stages.operations import OperationsStage
from gateway.stages.tenant import TenantStage
from tests.unit.gateway.test_stage_tenant import STORE, request


def run(stage: Stage, mode: Mode, ctx: RequestContext) -> Denial | None:
    return asyncio.run(Pipeline([stage], lambda _control: mode, "/fhir").run(ctx))


def upstream(ctx: RequestContext) -> tuple[object, ...]:
    return (ctx.params, ctx.upstream_path, ctx.body, ctx.if_none_exist)


CASES = [
    # (stage, request): each rewrites the request when enforced
    pytest.param(
        CompartmentStage(), lambda: request("GET", "Observation", "code=x", patient="p1"), id="C08"
    ),
    pytest.param(
        TenantStage(STORE),
        lambda: request("POST", "Observation", body={"resourceType": "Observation"}),
        id="C10-write",
    ),
    pytest.param(TenantStage(STORE), lambda: request("GET", "Observation"), id="C10-search"),
    pytest.param(
        OperationsStage(OperationsPolicy(max_count=50)),
        lambda: request("GET", "Observation", "_count=5000"),
        id="C12-count",
    ),
]


@pytest.mark.parametrize(("stage", "make"), CASES)
def test_an_enforced_control_rewrites_and_a_monitored_one_does_not(stage: Stage, make) -> None:
    enforced, monitored, untouched = make(), make(), make()
    assert run(stage, Mode.ENFORCE, enforced) is None
    assert upstream(enforced) != upstream(untouched)  # the case does exercise a rewrite
    assert run(stage, Mode.MONITOR, monitored) is None
    assert upstream(monitored) == upstream(untouched)


def test_a_monitored_batch_goes_upstream_unstamped() -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {
                "resource": {"resourceType": "Observation"},
                "request": {"method": "POST", "url": "Observation"},
            }
        ],
    }
    monitored, enforced = request("POST", "", body=bundle), request("POST", "", body=bundle)
    assert run(TenantStage(STORE), Mode.MONITOR, monitored) is None
    assert json.loads(monitored.body or b"") == bundle
    assert run(TenantStage(STORE), Mode.ENFORCE, enforced) is None
    assert json.loads(enforced.body or b"") != bundle


class Refusing(Stage):
    """A stage whose one check adds a response check, rewrites the query and then refuses."""

    name = "refusing"

    def checks(self) -> list[tuple[str | None, Check]]:
        return [("C05", self.check)]

    async def check(self, ctx: RequestContext) -> None:
        ctx.resource_checks.append(("C05", lambda _returned: None))
        ctx.upstream_params = (*ctx.params, ("_count", "1"))
        raise Denial(403, "not for this client", "C05", "insufficient_scope")


def test_a_monitored_refusal_is_a_finding_and_the_request_goes_on_unchanged() -> None:
    ctx = request("GET", "Observation", "code=x")
    assert run(Refusing(), Mode.MONITOR, ctx) is None
    assert [(f.control, f.action, f.status) for f in ctx.findings] == [("C05", "monitor", 403)]
    assert ctx.upstream_params is None
    assert not ctx.resource_checks and len(ctx.monitor_checks) == 1


def test_an_enforced_refusal_stops_the_request() -> None:
    ctx = request("GET", "Observation", "code=x")
    denial = run(Refusing(), Mode.ENFORCE, ctx)
    assert denial is not None and denial.control == "C05"
    assert [(f.control, f.action) for f in ctx.findings] == [("C05", "deny")]

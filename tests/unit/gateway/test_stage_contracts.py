"""Every stage keeps to what it declares: it changes no field of the request context outside its
`writes`, and the gateway's stage order gives each stage what it `reads` first."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
from typing import Any

import pytest

import gateway.stages as stages_package
from gateway.app import build_stages
from gateway.config import GatewayConfig
from gateway.context import RequestContext
from gateway.denial import Denial
from gateway.policy import POLICY_FILE, ClientPolicy, OperationsPolicy, RateLimitPolicy, load_policy
from gateway.settings import GatewaySettings
from gateway.stages import Stage, check_order
from gateway.stages.client_policy import ClientPolicyStage
from gateway.stages.compartment import CompartmentStage
from gateway.stages.operations import OperationsStage
from gateway.stages.rate_limit import RateLimitStage
from gateway.stages.scopes import ScopesStage
from gateway.stages.tenant import TenantStage
from gateway.stages.token import TokenStage
from gateway.token_verifier import VerifiedToken
from tests.unit.gateway.test_stage_tenant import STORE, request, token

FIELDS = {f.name for f in dataclasses.fields(RequestContext)}
# derived from `body` (its parse, kept with it) and written by the pipeline, not by stages
NOT_STAGE_STATE = {"parsed", "findings", "stage_ms", "started"}


class Verifier:
    """Stands in for the token verifier (tested on its own): every bearer is this token."""

    def __init__(self, verified: VerifiedToken) -> None:
        self.verified = verified

    async def verify(self, _bearer: str) -> VerifiedToken:
        return self.verified

    async def is_active(self, _bearer: str, _token: VerifiedToken) -> bool:
        return True


def all_stages() -> list[Stage]:
    return [
        TokenStage(Verifier(token(patient="p1")), {"c": "operational-ai"}),  # type: ignore[arg-type]
        RateLimitStage(RateLimitPolicy()),
        ClientPolicyStage(ClientPolicy()),
        TenantStage(STORE),
        ScopesStage(ClientPolicy()),
        OperationsStage(OperationsPolicy(max_count=10)),
        CompartmentStage(STORE),
    ]


def sample_requests() -> list[RequestContext]:
    observation = {"resourceType": "Observation", "subject": {"reference": "Patient/p1"}}
    batch = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [{"resource": observation, "request": {"method": "POST", "url": "Observation"}}],
    }
    made = [
        request("GET", "Observation", "code=x&_count=500", patient="p1"),
        request("GET", "Observation", "patient=p1"),
        request("GET", "Patient/mine", patient="p1"),
        request("POST", "Observation", body=observation, patient="p1"),
        request("PUT", "Patient/mine", body={"resourceType": "Patient", "id": "mine"}),
        request("DELETE", "Patient/theirs", patient="p1"),
        request("POST", "", body=batch, patient="p1"),
        request("GET", "$export", "_type=Patient"),
        request("GET", "Patient/p1/$everything", patient="p1"),
    ]
    for ctx in made:
        ctx.bearer = "opaque"
        ctx.if_none_exist = "identifier=x" if ctx.method == "POST" else None
    return made


def snapshot(ctx: RequestContext) -> dict[str, Any]:
    return {name: copy.copy(getattr(ctx, name)) for name in FIELDS - NOT_STAGE_STATE}


def changed(before: dict[str, Any], after: dict[str, Any]) -> set[str]:
    return {name for name in before if before[name] != after[name]}


def test_every_stage_declares_real_fields() -> None:
    for stage in all_stages():
        assert stage.reads <= FIELDS, stage.name
        assert stage.writes <= FIELDS, stage.name
    declared = {s.name for s in all_stages()}
    gateways = {c.name for c in Stage.__subclasses__() if c.__module__.startswith("gateway.")}
    assert declared == gateways  # none left out here
    assert stages_package.REQUEST_FIELDS <= FIELDS


@pytest.mark.parametrize("stage", all_stages(), ids=lambda s: s.name)
def test_a_stage_changes_only_what_it_declares(stage: Stage) -> None:
    seen: set[str] = set()
    for ctx in sample_requests():
        if stage.name != "token":  # as it arrives after the token stage
            ctx.client_class = "operational-ai"
        for _control, check in stage.checks():
            before = snapshot(ctx)
            with contextlib.suppress(Denial):
                asyncio.run(check(ctx))
            seen |= changed(before, snapshot(ctx))
    assert seen <= stage.writes, f"{stage.name} changed {sorted(seen - stage.writes)}"


def test_the_samples_do_exercise_writes() -> None:
    # the contract test above is not vacuous: the samples make the stages that write, write
    writers = {"token", "tenant", "operations", "compartment", "scopes"}
    for stage in all_stages():
        if stage.name not in writers:
            continue
        seen: set[str] = set()
        for ctx in sample_requests():
            if stage.name != "token":
                ctx.client_class = "operational-ai"
            before = snapshot(ctx)
            for _control, check in stage.checks():
                with contextlib.suppress(Denial):
                    asyncio.run(check(ctx))
            seen |= changed(before, snapshot(ctx))
        assert seen, f"no sample makes {stage.name} write anything"


def test_the_gateways_order_gives_each_stage_what_it_reads() -> None:
    config = GatewayConfig(settings=GatewaySettings(), policy=load_policy(POLICY_FILE))
    built = build_stages(config, Verifier(token()))  # type: ignore[arg-type]
    assert built[0].name == "token"
    check_order(built)  # raises if not


def test_a_stage_before_the_token_is_refused() -> None:
    with pytest.raises(ValueError, match="client_policy reads"):
        check_order([ClientPolicyStage(ClientPolicy()), *all_stages()])

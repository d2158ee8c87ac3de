"""What the stage tests share: a verified token, a classified request, and running one check.

A check is driven as the pipeline drives it (`await check(ctx)`): it passes, or refuses by
raising `Denial`. Whether a refusal is enforced or only recorded (monitor mode) is the
pipeline's business, not tested here.
"""

from __future__ import annotations

import asyncio

import pytest

from gateway.classify import classify
from gateway.context import RequestContext
from gateway.denial import Denial
from gateway.stages import Check
from gateway.token_verifier import VerifiedToken
from labcore.scopes import parse_scopes

ISSUER = "https://auth.example/realms/a"


def verified(
    scope: str = "launch/patient patient/Observation.rs",
    client_id: str = "ai-client",
    *,
    patient: str | None = "pat-1",
    issued_at: int | None = 1_000,
    expires_at: int = 1_300,
) -> VerifiedToken:
    return VerifiedToken(
        token_id="t-1",
        issuer=ISSUER,
        tenant="a",
        client_id=client_id,
        subject="user-1",
        scopes=parse_scopes(scope),
        patient=patient,
        encounter=None,
        issued_at=issued_at,
        expires_at=expires_at,
        jti="t-1",
    )


def context(
    method: str = "GET",
    path: str = "Observation",
    query: str = "",
    *,
    token: VerifiedToken | None = None,
    client_class: str | None = None,
    bearer: str | None = None,
    body: bytes | None = None,
) -> RequestContext:
    """A request as the stages see it: `path` below /fhir, classified."""
    full = f"/fhir/{path}" if path else "/fhir"
    return RequestContext(
        request_id="r-1",
        method=method,
        raw_path=full,
        raw_query=query,
        bearer=bearer,
        body=body,
        fhir=classify(method, full, query, "/fhir"),
        token=token,
        client_class=client_class,
    )


def run(check: Check, ctx: RequestContext) -> RequestContext:
    """Run one check; the context, for what it recorded (a `Denial` propagates)."""
    asyncio.run(check(ctx))
    return ctx


def passes(check: Check, ctx: RequestContext) -> RequestContext:
    """The check must let the request through; the context, for what it recorded."""
    try:
        run(check, ctx)
    except Denial as denial:
        pytest.fail(f"refused with {denial.status} ({denial.control}): {denial.reason}")
    return ctx


def refusal(check: Check, ctx: RequestContext, status: int, control: str | None) -> Denial:
    """The check must refuse with `status`, naming `control`; the refusal, for its reason."""
    with pytest.raises(Denial) as caught:
        run(check, ctx)
    denial = caught.value
    assert (denial.status, denial.control) == (status, control), denial.reason
    return denial

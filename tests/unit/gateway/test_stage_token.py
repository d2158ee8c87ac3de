"""Stage `token`: a verified bearer token is required (always enforced), and C09 refuses a token
the issuer no longer considers active.

The verifier is a stand-in that answers what each test says: the verifier's own checks are in
test_token_verifier.py; here, what the stage does with its answers.
"""

from __future__ import annotations

import pytest

from gateway.denial import Denial, unauthorized
from gateway.stages.token import TOKEN, TokenStage
from gateway.token_verifier import TokenVerifier, VerifiedToken
from tests.unit.gateway.stage_kit import context, passes, refusal, verified

CLASSES = {"ai-client": "operational-ai", "analytics": "analytics-backend"}


class FakeVerifier:
    """Accepts the tokens it was given, refuses others as the real one does; `active` is what
    introspection answers (True, False, or a Denial to raise)."""

    def __init__(self, tokens: dict[str, VerifiedToken], active: bool | Denial = True) -> None:
        self.tokens = tokens
        self.active = active
        self.introspected: list[str] = []

    async def verify(self, token: str) -> VerifiedToken:
        found = self.tokens.get(token)
        if found is None:
            raise unauthorized("the token's signature does not verify")
        return found

    async def is_active(self, token: str, token_info: VerifiedToken) -> bool:
        self.introspected.append(token)
        if isinstance(self.active, Denial):
            raise self.active
        return self.active


def stage(verifier: FakeVerifier) -> TokenStage:
    fake: TokenVerifier = verifier  # type: ignore[assignment]  # the two methods the stage uses
    return TokenStage(fake, CLASSES)


def test_checks_are_authentication_then_revocation() -> None:
    checks = stage(FakeVerifier({})).checks()
    assert [control for control, _ in checks] == [TOKEN, "C09"]


@pytest.mark.parametrize("bearer", [None, ""])
def test_a_request_without_a_token_is_refused(bearer: str | None) -> None:
    token_stage = stage(FakeVerifier({"": verified()}))  # even if "" would verify
    denial = refusal(token_stage.authenticate, context(bearer=bearer), 401, None)
    assert denial.reason == "a bearer token is required"
    assert denial.bearer_error == "invalid_token"


def test_a_verified_token_is_put_in_the_context_with_its_client_class() -> None:
    token = verified(client_id="ai-client")
    ctx = passes(stage(FakeVerifier({"good": token})).authenticate, context(bearer="good"))
    assert ctx.token is token
    assert ctx.client_class == "operational-ai"


def test_a_client_without_a_profile_has_no_class() -> None:
    token = verified(client_id="someone-new")
    ctx = passes(stage(FakeVerifier({"good": token})).authenticate, context(bearer="good"))
    assert ctx.client_class is None  # judged as operational AI by the later stages (C01, C03)


def test_the_verifiers_refusal_is_the_stages() -> None:
    ctx = context(bearer="forged")
    denial = refusal(stage(FakeVerifier({})).authenticate, ctx, 401, None)
    assert denial.reason == "the token's signature does not verify"
    assert ctx.token is None and ctx.client_class is None


def test_an_untrusted_issuer_keeps_its_c10() -> None:
    class Untrusted(FakeVerifier):
        async def verify(self, token: str) -> VerifiedToken:
            raise unauthorized("token issuer 'x' is not trusted here", "C10")

    refusal(stage(Untrusted({})).authenticate, context(bearer="t"), 401, "C10")


def test_a_verifier_that_cannot_reach_the_issuer_fails_closed() -> None:
    class Down(FakeVerifier):
        async def verify(self, token: str) -> VerifiedToken:
            raise Denial(503, "cannot fetch the signing keys of x (ConnectError)")

    ctx = context(bearer="t")
    refusal(stage(Down({})).authenticate, ctx, 503, None)
    assert ctx.token is None


# -- C09: revocation by introspection -----------------------------------------------------------


def test_an_active_token_passes_c09() -> None:
    verifier = FakeVerifier({"good": verified()}, active=True)
    ctx = context(bearer="good", token=verified())
    passes(stage(verifier).not_revoked, ctx)
    assert verifier.introspected == ["good"]


def test_a_revoked_token_is_refused_as_c09() -> None:
    verifier = FakeVerifier({"good": verified()}, active=False)
    ctx = context(bearer="good", token=verified())
    denial = refusal(stage(verifier).not_revoked, ctx, 401, "C09")
    assert "revoked" in denial.reason
    assert denial.bearer_error == "invalid_token"


def test_introspection_that_cannot_be_had_refuses() -> None:
    down = Denial(503, "cannot reach x to introspect (ConnectError)")
    verifier = FakeVerifier({"good": verified()}, active=down)
    refusal(stage(verifier).not_revoked, context(bearer="good", token=verified()), 503, None)


@pytest.mark.parametrize(("bearer", "has_token"), [(None, True), ("good", False)])
def test_c09_asks_nothing_without_an_authenticated_token(
    bearer: str | None, has_token: bool
) -> None:
    # authentication off (the bare-proxy measurement), or it did not run: nothing to introspect
    verifier = FakeVerifier({"good": verified()}, active=False)
    ctx = context(bearer=bearer, token=verified() if has_token else None)
    passes(stage(verifier).not_revoked, ctx)
    assert verifier.introspected == []

"""Stage `token`: a valid bearer token is required (fail closed).

Authentication is not a numbered control: without a verified identity no other control can be
judged, so it is always enforced (its refusals carry C10 when the issuer is not trusted). Tokens
are verified locally against the issuer's JWKS (`gateway/token_verifier.py`). Control C09 adds an
introspection call (cached for `introspection_ttl_s`), the only way to see that a still-unexpired
JWT was revoked.
"""

from __future__ import annotations

from gateway.context import RequestContext
from gateway.denial import unauthorized
from gateway.stages import Check, Stage
from gateway.token_verifier import TokenVerifier

TOKEN = "token"  # pseudo control id: the stage's on/off switch in the policy


class TokenStage(Stage):
    name = "token"
    reads = frozenset({"bearer"})
    writes = frozenset({"token", "client_class"})

    def __init__(self, verifier: TokenVerifier, client_classes: dict[str, str]) -> None:
        self.verifier = verifier
        self.client_classes = client_classes

    def checks(self) -> list[tuple[str | None, Check]]:
        return [(TOKEN, self.authenticate), ("C09", self.not_revoked)]

    async def authenticate(self, ctx: RequestContext) -> None:
        token = ctx.bearer
        if not token:
            raise unauthorized("a bearer token is required")
        ctx.token = await self.verifier.verify(token)
        ctx.client_class = self.client_classes.get(ctx.token.client_id)

    async def not_revoked(self, ctx: RequestContext) -> None:
        """C09: a token revoked at session end is refused (introspection, cached briefly)."""
        if ctx.token is None or ctx.bearer is None:
            return
        if not await self.verifier.is_active(ctx.bearer, ctx.token):
            raise unauthorized("the token has been revoked (introspection: not active)", "C09")

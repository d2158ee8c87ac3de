"""Stage `client_policy`: what an operational AI client's token may be (C01, C02, C03).

- C01: operational AI clients hold patient-level scopes only (no `system/`, no `user/`).
- C02: no token lives longer than the policy's maximum (`exp - iat`).
- C03: operational AI clients hold no `offline_access` (a refresh chain that outlives the session).

A client the profiles do not know is judged as operational AI: the strict default.
"""

from __future__ import annotations

import time

from gateway.context import RequestContext
from gateway.denial import forbidden, unauthorized
from gateway.policy import ClientPolicy
from gateway.stages import Check, Stage

_PATIENT_ONLY = frozenset({"patient"})


class ClientPolicyStage(Stage):
    name = "client_policy"
    reads = frozenset({"token", "client_class"})
    writes = frozenset()

    def __init__(self, policy: ClientPolicy) -> None:
        self.operational = frozenset(policy.operational_classes)
        self.max_lifetime_s = policy.max_token_lifetime_s

    def checks(self) -> list[tuple[str | None, Check]]:
        return [("C01", self.patient_scopes_only), ("C02", self.lifetime), ("C03", self.offline)]

    def _is_operational(self, ctx: RequestContext) -> bool:
        return ctx.client_class is None or ctx.client_class in self.operational

    async def patient_scopes_only(self, ctx: RequestContext) -> None:
        if ctx.token is None or not self._is_operational(ctx):
            return
        contexts = ctx.token.scopes.contexts
        if contexts <= _PATIENT_ONLY:
            return  # most tokens: nothing to sort out
        broad = sorted(c for c in contexts if c != "patient")
        if broad:
            raise forbidden(
                f"client {ctx.token.client_id} is an operational AI client and may hold "
                f"patient-level scopes only, not {'/'.join(broad)}/ scopes",
                "C01",
            )

    async def lifetime(self, ctx: RequestContext) -> None:
        token = ctx.token
        if token is None:
            return
        if token.lifetime_s is not None:
            lifetime, what = token.lifetime_s, "token lifetime"
        else:  # no `iat`: what is left of it is the least its lifetime can be
            lifetime, what = token.expires_at - int(time.time()), "token without iat, left"
        if lifetime > self.max_lifetime_s:
            raise unauthorized(
                f"{what} {lifetime} s exceeds the policy maximum {self.max_lifetime_s} s", "C02"
            )

    async def offline(self, ctx: RequestContext) -> None:
        if ctx.token is None or not self._is_operational(ctx):
            return
        if ctx.token.scopes.has_offline_access:
            raise forbidden(
                f"client {ctx.token.client_id} is an operational AI client and may not hold "
                "offline_access",
                "C03",
            )

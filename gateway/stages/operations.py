"""Stage `operations`: bulk export and other dangerous operations (C04, C12).

- C04: `$export` (system, Patient, Group) only for clients on the export allowlist, and only
  with a backend-services token (system scopes). Status polling and output downloads of an
  export job are part of the same flow and follow the same rule.
- C12: other restricted operations (`$everything`, `$validate`, `$expunge`, ...) only for
  clients on their allowlist; `_count` is capped so one request cannot page out a population.
"""

from __future__ import annotations

from gateway.classify import Interaction
from gateway.context import RequestContext
from gateway.denial import forbidden
from gateway.policy import OperationsPolicy
from gateway.stages import Check, Stage

EXPORT_FLOW = frozenset({"$export", "$export-poll-status"})


class OperationsStage(Stage):
    name = "operations"
    reads = frozenset({"token", "fhir", "upstream_params"})
    writes = frozenset({"upstream_params"})

    def __init__(self, policy: OperationsPolicy) -> None:
        self.export_clients = frozenset(policy.export_clients)
        # the policy's names without case, as classify gives the request's
        self.restricted = frozenset(op.lower() for op in policy.restricted) - EXPORT_FLOW
        self.restricted_clients = frozenset(policy.restricted_clients)
        self.max_count = policy.max_count

    def checks(self) -> list[tuple[str | None, Check]]:
        return [("C04", self.export), ("C12", self.dangerous), ("C12", self.cap_count)]

    def _client(self, ctx: RequestContext) -> str:
        return ctx.token.client_id if ctx.token else ""

    async def export(self, ctx: RequestContext) -> None:
        fhir = ctx.fhir
        is_export = fhir is not None and fhir.operation in EXPORT_FLOW
        is_output = fhir is not None and fhir.reads_binary  # every Binary read counts as one
        if not (is_export or is_output):
            return
        client = self._client(ctx)
        if client not in self.export_clients:
            raise forbidden(f"bulk $export is not allowed for client {client!r}", "C04")
        if ctx.token is not None and not ctx.token.scopes.has_context("system"):
            raise forbidden("bulk $export needs a backend-services token (system scopes)", "C04")

    async def dangerous(self, ctx: RequestContext) -> None:
        fhir = ctx.fhir
        if fhir is None or fhir.interaction is not Interaction.OPERATION:
            return
        if fhir.operation in self.restricted and self._client(ctx) not in self.restricted_clients:
            raise forbidden(
                f"operation {fhir.operation} is restricted; client {self._client(ctx)!r} "
                "is not allowed to call it",
                "C12",
            )

    async def cap_count(self, ctx: RequestContext) -> None:
        if ctx.fhir is None:
            return  # any request that pages (search, history, $everything) is capped
        params = ctx.params
        capped = []
        changed = False
        for name, value in params:
            if name == "_count" and (not value.isdigit() or int(value) > self.max_count):
                capped.append((name, str(self.max_count)))
                changed = True
            else:
                capped.append((name, value))
        if changed:
            ctx.upstream_params = tuple(capped)

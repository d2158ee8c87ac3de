"""Stage `tenant`: a token's issuer binds it to one tenant's data (C10).

The token's issuer (a tenant realm) names the tenant; the seeder tags every resource with
`meta.tag` `https://fhirlab.dev/tenant|<tenant>`. Searches are narrowed to the token's tenant with
`_tag`, and every resource returned must carry the token's tenant tag: a resource of another
tenant, or of none, is not returned. A resource written (create, update) is stamped with the
token's tenant; one that names another tenant is refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from gateway.classify import Interaction
from gateway.context import RequestContext
from gateway.denial import Denial, forbidden
from gateway.stages import Check, Stage

TENANT_TAG_SYSTEM = "https://fhirlab.dev/tenant"
# Resource types that are about the server, not tenant data.
_UNTENANTED = frozenset(
    {"CapabilityStatement", "OperationOutcome", "Bundle", "Parameters", "Binary"}
)


_WRITES = frozenset({Interaction.CREATE, Interaction.UPDATE})


def stamp(body: bytes, tenant: str) -> bytes:
    """The written resource with the token's tenant tag (refused if it names another tenant)."""
    try:
        resource = json.loads(body)
    except ValueError:
        return body  # not JSON: HAPI answers the client's error itself
    if not isinstance(resource, dict) or "resourceType" not in resource:
        return body
    owner = tenant_of(resource)
    if owner == tenant:
        return body
    if owner is not None:
        raise forbidden(f"the resource names tenant {owner}; this token is for {tenant}", "C10")
    meta = resource.get("meta") if isinstance(resource.get("meta"), dict) else {}
    tags = [t for t in meta.get("tag") or [] if isinstance(t, dict)]
    resource["meta"] = {**meta, "tag": [*tags, {"system": TENANT_TAG_SYSTEM, "code": tenant}]}
    return json.dumps(resource).encode()


def tenant_of(resource: dict[str, Any]) -> str | None:
    meta = resource.get("meta")
    if not isinstance(meta, dict):
        return None
    for tag in meta.get("tag") or []:
        if isinstance(tag, dict) and tag.get("system") == TENANT_TAG_SYSTEM:
            code = tag.get("code")
            return code if isinstance(code, str) else None
    return None


class TenantStage(Stage):
    name = "tenant"

    def checks(self) -> list[tuple[str | None, Check]]:
        return [("C10", self.bind)]

    async def bind(self, ctx: RequestContext) -> None:
        if ctx.token is None or ctx.fhir is None:
            return
        tenant = ctx.token.tenant
        if ctx.fhir.interaction in _WRITES and ctx.body:
            ctx.body = stamp(ctx.body, tenant)
        if ctx.fhir.is_search and ctx.fhir.resource_type not in (None, "*"):
            ctx.upstream_params = (*ctx.params, ("_tag", f"{TENANT_TAG_SYSTEM}|{tenant}"))

        ctx.resource_checks.append(("C10", SameTenant(tenant)))


@dataclass(frozen=True, slots=True)
class SameTenant:
    """Each returned resource must carry the token's tenant (a value: equal per tenant, so a
    batch's entries add one check between them)."""

    tenant: str

    def __call__(self, resource: dict[str, Any]) -> Denial | None:
        if resource.get("resourceType") in _UNTENANTED:
            return None
        owner = tenant_of(resource)
        if owner == self.tenant:
            return None
        return forbidden(
            f"{resource.get('resourceType')}/{resource.get('id')} belongs to "
            f"{'tenant ' + owner if owner else 'no tenant'}, not to {self.tenant}",
            "C10",
        )

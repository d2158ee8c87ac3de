"""Stage `tenant`: a token's issuer binds it to one tenant's data (C10).

The token's issuer (a tenant realm) names the tenant; the seeder tags every resource with
`meta.tag` `https://fhirlab.dev/tenant|<tenant>`. Searches are narrowed to the token's tenant with
`_tag`, and every resource returned must carry the token's tenant tag: a resource of another
tenant, or of none, is not returned. A resource written (create, update) is stamped with the
token's tenant; one that names another tenant is refused. In a batch or transaction, each create
and update entry's resource is stamped in the Bundle that goes upstream (re-serialised only then),
so what a transaction creates is the tenant's too.

Writes by id (update, patch, delete) read the stored version first (read-before-write, through
`gateway/current.py`, sharing the one read with C08): one that carries another tenant's tag, or
none (untagged data belongs to no tenant, so no tenant's token may take it over), is refused. An
update of an id with nothing stored creates it (stamped). A patch must not touch `meta` (where the
tenant tag lives) nor replace the whole resource, and must be JSON (JSON Patch or FHIRPath Patch)
for the gateway to check that. Conditional updates, patches and deletes are narrowed to the
token's tenant with `_tag`, like searches: they can only match its own resources; so are a
conditional create's `If-None-Exist` criteria (a batch entry's `ifNoneExist` too), so whether
another tenant holds a matching resource cannot be probed. A bulk export kick-off that names its
types gets a `_typeFilter` with the tenant's `_tag` for each; whatever an export job holds, its
files are filtered line by line on the way out (`gateway/ndjson.py`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from gateway.classify import ClassifyError, FhirRequest, Interaction, Params, classify
from gateway.context import RequestContext
from gateway.current import CurrentResources, stored_version
from gateway.denial import Denial, forbidden
from gateway.returned import Returned
from gateway.stages import Check, Stage
from gateway.stages.compartment import patched_elements
from gateway.stages.scopes import export_types

TENANT_TAG_SYSTEM = "https://fhirlab.dev/tenant"
# Resource types about the server, not tenant data: they may carry no tenant tag. A Binary is not
# one of them: returned as itself it is content no check can read (an attachment), so it must
# carry the tenant's tag (stamped by the gateway when it was written), and one without a tag
# (an export file HAPI wrote) can be neither changed nor read as itself through the gateway; a
# Binary holding FHIR is checked as the resources it holds instead.
_MAY_BE_UNTAGGED = frozenset({"CapabilityStatement", "OperationOutcome", "Bundle", "Parameters"})


_WRITES = frozenset({Interaction.CREATE, Interaction.UPDATE})
# Writes that change a stored resource: by id, checked on the stored version; conditional, narrowed.
_CHANGES = frozenset({Interaction.UPDATE, Interaction.PATCH, Interaction.DELETE})
_VERBS = {Interaction.UPDATE: "overwrite", Interaction.PATCH: "patch", Interaction.DELETE: "delete"}


def stamp(body: bytes, tenant: str) -> bytes:
    """The written resource with the token's tenant tag (refused if it names another tenant)."""
    try:
        resource = json.loads(body)
    except ValueError:
        resource = None
    if not isinstance(resource, dict) or "resourceType" not in resource:
        # what cannot be tagged would be stored in no tenant (a raw Binary upload)
        raise Denial(
            400,
            "the body is not a FHIR resource in JSON, so it cannot be tagged with tenant "
            f"{tenant}; send it as application/fhir+json",
            "C10",
        )
    owner = tenant_of(resource)
    if owner == tenant:
        return body
    if owner is not None:
        raise forbidden(f"the resource names tenant {owner}; this token is for {tenant}", "C10")
    return json.dumps(with_tag(resource, tenant)).encode()


def with_tag(resource: dict[str, Any], tenant: str) -> dict[str, Any]:
    """`resource` with the tenant tag added to `meta.tag` (other tags kept)."""
    meta = resource.get("meta") if isinstance(resource.get("meta"), dict) else {}
    tags = [t for t in meta.get("tag") or [] if isinstance(t, dict)]
    return {
        **resource,
        "meta": {**meta, "tag": [*tags, {"system": TENANT_TAG_SYSTEM, "code": tenant}]},
    }


def stamp_entries(body: bytes, tenant: str) -> bytes:
    """A batch/transaction Bundle whose create and update entries carry the tenant tag, so what
    the server creates from them is the tenant's. The body is re-serialised only if an entry was
    stamped; a body that is not a Bundle is returned as it is (the pipeline refuses it). Entries
    naming another tenant are left for the entry's own check to refuse."""
    try:
        bundle = json.loads(body)
    except ValueError:
        return body
    return json.dumps(bundle).encode() if stamp_bundle(bundle, tenant) else body


def stamp_bundle(bundle: Any, tenant: str) -> bool:
    """`stamp_entries` on a parsed body, in place: was an entry stamped?"""
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        return False
    entries = bundle.get("entry")
    if not isinstance(entries, list):
        return False
    stamped = False
    for entry in entries:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict) or "resourceType" not in resource:
            continue
        if tenant_of(resource) is not None or not _writes(entry.get("request")):
            continue
        entry["resource"] = with_tag(resource, tenant)
        stamped = True
    return stamped


def _writes(request: Any) -> bool:
    """Does a batch entry's request create or update its resource?"""
    if not isinstance(request, dict):
        return False
    method, url = request.get("method"), request.get("url")
    if method not in ("POST", "PUT") or not isinstance(url, str):
        return False
    path, _, query = url.partition("?")
    try:
        fhir = classify(method, f"/_/{path}", query, "/_")
    except ClassifyError:
        return False  # the pipeline refuses the entry
    return fhir.interaction in _WRITES


def belongs(resource: dict[str, Any], tenant: str) -> bool:
    """May a token of `tenant` see or change `resource`: it carries the tenant's tag, or it is
    about the server (`_MAY_BE_UNTAGGED`) and carries none."""
    owner = tenant_of(resource)
    return owner == tenant or (owner is None and resource.get("resourceType") in _MAY_BE_UNTAGGED)


def tenant_of(resource: dict[str, Any]) -> str | None:
    meta = resource.get("meta")
    if not isinstance(meta, dict):
        return None
    for tag in meta.get("tag") or []:
        if isinstance(tag, dict) and tag.get("system") == TENANT_TAG_SYSTEM:
            code = tag.get("code")
            return code if isinstance(code, str) else None
    return None


def check_patch(body: bytes | None, resource_type: str, tenant: str) -> None:
    """A patch must leave the tenant tag alone: no `meta`, no whole-resource replace."""
    try:
        touched = patched_elements(json.loads(body or b""), resource_type)
    except ValueError:
        touched = None
    if touched is None:
        raise forbidden(
            "the gateway cannot read this patch to check that it keeps the resource in tenant "
            f"{tenant}: only JSON Patch and FHIRPath Patch (JSON) are accepted",
            "C10",
        )
    if touched & {"meta", ""}:
        raise forbidden(
            "patches meta (or the whole resource), where the tenant tag lives; patches must "
            f"leave the resource in tenant {tenant}",
            "C10",
        )


def check_stored(fhir: FhirRequest, stored: dict[str, Any] | None, tenant: str) -> None:
    """The version a write by id would change must be this tenant's (None: nothing stored; an
    update creates it, a patch or delete finds nothing and the server says so)."""
    if stored is None:
        return
    if belongs(stored, tenant):
        return
    owner = tenant_of(stored)
    whose = f"tenant {owner}" if owner else "no tenant"
    raise forbidden(
        f"{fhir.method} {fhir.resource_type}/{fhir.resource_id} would "
        f"{_VERBS.get(fhir.interaction, 'change')} a resource of {whose}; this token is for "
        f"{tenant}",
        "C10",
    )


def export_narrowed(params: Params, tag: str) -> Params | None:
    """A bulk export kick-off bound to the tenant: a `_typeFilter` with the tenant's `_tag` for
    every type in `_type`, so the job holds only the tenant's data. None when the export names
    no types (every type: it cannot be listed) or carries the client's own `_typeFilter`s (one
    per type would be OR-ed with them); the output files are then filtered line by line at
    download (`gateway/ndjson.py`)."""
    if any(name == "_typeFilter" for name, _ in params):
        return None
    types = [t for t in export_types(params) if t != "*"]
    if not types:
        return None
    return (*params, ("_typeFilter", ",".join(f"{t}?_tag={tag}" for t in types)))


class TenantStage(Stage):
    """C10. With `current` (stored resources, read from HAPI), updates, patches and deletes by
    id are checked against the version they change; without it, on their body only."""

    name = "tenant"
    reads = frozenset({"token", "fhir", "upstream_params", "body", "if_none_exist", "stored"})
    writes = frozenset({"body", "upstream_params", "if_none_exist", "resource_checks", "stored"})

    def __init__(self, current: CurrentResources | None = None) -> None:
        self.current = current

    def checks(self) -> list[tuple[str | None, Check]]:
        return [("C10", self.bind)]

    async def bind(self, ctx: RequestContext) -> None:
        if ctx.token is None or ctx.fhir is None:
            return
        fhir = ctx.fhir
        tenant = ctx.token.tenant
        tag = ("_tag", f"{TENANT_TAG_SYSTEM}|{tenant}")
        if fhir.interaction in _WRITES and ctx.body:
            ctx.body = stamp(ctx.body, tenant)
        elif fhir.interaction is Interaction.BATCH and ctx.body:
            try:
                bundle = ctx.json_body()  # parsed once, here and for the entries' checks
            except ValueError:
                bundle = None  # the pipeline refuses it
            if stamp_bundle(bundle, tenant):
                ctx.set_json_body(bundle)
        if fhir.interaction is Interaction.CREATE:
            ctx.narrow_if_none_exist(*tag)  # a conditional create matches only its own
        if fhir.interaction is Interaction.PATCH:
            check_patch(ctx.body, fhir.resource_type or "", tenant)
        if fhir.operation == "$export":
            narrowed = export_narrowed(ctx.params, tag[1])
            if narrowed is not None:
                ctx.upstream_params = narrowed
        if fhir.is_search and fhir.resource_type not in (None, "*"):
            ctx.upstream_params = (*ctx.params, tag)
        elif fhir.interaction is Interaction.OPERATION and fhir.resource_id is not None:
            await self.check_target(ctx, tenant)
        elif fhir.interaction in _CHANGES and fhir.resource_type is not None:
            if fhir.resource_id is None:  # conditional: match only this tenant's resources
                ctx.upstream_params = (*ctx.params, tag)
            elif self.current is not None:
                stored = await stored_version(
                    ctx, self.current, fhir.resource_type, fhir.resource_id
                )
                check_stored(fhir, stored, tenant)

        ctx.resource_checks.append(("C10", SameTenant(tenant)))

    async def check_target(self, ctx: RequestContext, tenant: str) -> None:
        """An operation on an instance (`Patient/x/$meta`, `$everything`, `$validate`) acts on a
        stored resource whose answer may not hold it (`$meta` answers its meta alone): the
        instance must be this tenant's. Read first, as before a write; another tenant's is
        answered as for an id that does not exist."""
        fhir = ctx.fhir
        assert fhir is not None and fhir.resource_type and fhir.resource_id
        if self.current is None:
            return
        stored = await stored_version(ctx, self.current, fhir.resource_type, fhir.resource_id)
        if stored is None:
            return  # nothing stored: the server answers the operation as it does
        if belongs(stored, tenant):
            return
        raise Denial(
            404,
            f"{fhir.resource_type}/{fhir.resource_id} is not known to this token (it does not "
            "exist, or belongs to another tenant)",
            "C10",
        )


@dataclass(frozen=True, slots=True)
class SameTenant:
    """Each returned resource must carry the token's tenant (a value: equal per tenant, so a
    batch's entries add one check between them)."""

    tenant: str

    def __call__(self, returned: Returned) -> Denial | None:
        resource = returned.resource
        if resource.get("resourceType") in _MAY_BE_UNTAGGED:
            return None
        owner = tenant_of(resource)
        if owner == self.tenant:
            return None
        return forbidden(
            f"{resource.get('resourceType')}/{resource.get('id')} belongs to "
            f"{'tenant ' + owner if owner else 'no tenant'}, not to {self.tenant}",
            "C10",
        )

"""Reading a resource's stored version from HAPI before a write changes it (C08 read-before-write).

A patient-context token's `PUT Observation/x` carries this patient's content; whether `x` today
belongs to another patient only the server knows. The compartment stage asks through
`CurrentResources`, which uses the gateway's own pooled client to HAPI (credentials never go
upstream; HAPI trusts the gateway). Fails closed: if HAPI cannot say, the write is refused (502).
The tenant stage (C10) asks the same question of the same version: `stored_version` reads it once
per request and keeps it on the request's context for the next stage that asks.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

import httpx

from gateway.context import RequestContext
from gateway.denial import Denial

__all__ = ["CurrentResources", "HapiCurrentResources", "stored_version"]


class CurrentResources(Protocol):
    async def read(self, resource_type: str, resource_id: str) -> dict[str, Any] | None:
        """The stored resource, or None when there is none (never created, or deleted)."""
        ...


class HapiCurrentResources:
    """`CurrentResources` over the gateway's HTTP client to HAPI."""

    def __init__(self, client: httpx.AsyncClient, base: str) -> None:
        self.client = client
        self.base = base.rstrip("/")

    async def read(self, resource_type: str, resource_id: str) -> dict[str, Any] | None:
        url = f"{self.base}/{resource_type}/{resource_id}"
        try:
            resp = await self.client.get(url, headers={"Accept": "application/fhir+json"})
        except httpx.HTTPError as exc:
            raise Denial(
                502, f"cannot read {resource_type}/{resource_id} to check the write ({exc!r})"
            ) from None
        if resp.status_code in (404, 410):
            return None
        if resp.status_code != 200:
            raise Denial(
                502,
                f"the FHIR server answered {resp.status_code} when the gateway read "
                f"{resource_type}/{resource_id} to check the write",
            )
        try:
            resource = json.loads(resp.content)
        except ValueError:
            raise Denial(502, f"{resource_type}/{resource_id} is not JSON") from None
        if not isinstance(resource, dict) or resource.get("resourceType") != resource_type:
            raise Denial(502, f"{resource_type}/{resource_id} is not a {resource_type}")
        return resource


async def stored_version(
    ctx: RequestContext, current: CurrentResources, resource_type: str, resource_id: str
) -> dict[str, Any] | None:
    """The stored version of `resource_type/resource_id`, read at most once per request."""
    key = (resource_type, resource_id)
    if ctx.stored is None:
        ctx.stored = {}
    elif key in ctx.stored:
        return ctx.stored[key]
    resource = await current.read(resource_type, resource_id)
    ctx.stored[key] = resource
    return resource

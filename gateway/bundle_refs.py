"""References between the entries of one transaction or batch Bundle (`urn:uuid:` full URLs).

A transaction may name an entry by its `fullUrl` (`urn:uuid:…`, `urn:oid:…`) and point at it
from the other entries (`"subject": {"reference": "urn:uuid:…"}`); the server resolves them when
it processes the Bundle. The gateway checks each entry alone, so it resolves them first: an entry
that writes a resource by id (`PUT Patient/P`) gives its full URL the identity `Patient/P`, and
the other entries' references to that URL are read as `Patient/P` by the checks. An entry that
creates a resource (`POST`) has no id yet: references to it stay unresolved (a new Patient is
never the token's patient). Resolution is for checking only; the Bundle goes upstream unchanged.
"""

from __future__ import annotations

from typing import Any

from gateway.classify import RESOURCE_ID, RESOURCE_TYPE

__all__ = ["local_identities", "resolve_local"]

_LOCAL_PREFIXES = ("urn:uuid:", "urn:oid:")


def local_identities(entries: list[Any]) -> dict[str, str]:
    """`urn:` full URL -> `Type/id` for the entries that write a resource by id (O(entries))."""
    found: dict[str, str] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        full_url, request = entry.get("fullUrl"), entry.get("request")
        if not isinstance(full_url, str) or not full_url.startswith(_LOCAL_PREFIXES):
            continue
        if not isinstance(request, dict) or request.get("method") != "PUT":
            continue
        url = request.get("url")
        if not isinstance(url, str) or "?" in url:
            continue  # conditional: whatever it matches is not known here
        parts = url.split("/")
        if (
            len(parts) == 2
            and RESOURCE_TYPE.fullmatch(parts[0])
            and RESOURCE_ID.fullmatch(parts[1])
        ):
            found[full_url] = url
    return found


def resolve_local(resource: Any, identities: dict[str, str]) -> Any:
    """A copy of `resource` whose references to other entries name their `Type/id` (the
    resource itself when there is nothing to resolve)."""
    if not identities:
        return resource
    changed = False

    def walk(node: Any) -> Any:
        nonlocal changed
        if isinstance(node, dict):
            out = {key: walk(value) for key, value in node.items()}
            ref = node.get("reference")
            if isinstance(ref, str) and ref in identities:
                out["reference"] = identities[ref]
                changed = True
            return out
        if isinstance(node, list):
            return [walk(item) for item in node]
        return node

    resolved = walk(resource)
    return resolved if changed else resource

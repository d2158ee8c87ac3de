"""What of an answer may go out: the one place that decides, after the request's checks.

Every resource an answer holds is put to the request's response checks (C05 type and scope
constraints, C08 compartment, C10 tenant): a resource read by id, each entry of a search or
history Bundle with whatever rides along (included and rev-included resources, nested Bundles,
`$everything`), the entries of a batch or transaction response, the resources inside a
`Parameters`, the lines of an export file read as a `Binary`. Contained resources are checked as
part of the resource that contains them.

- A resource answered alone that an enforced check refuses: the answer is refused (403); a read
  by id (conditional or not) is answered 404, as for a resource that does not exist, so that
  neither the status nor an `If-None-Match` tells the client that the id exists.
- A Bundle entry that one refuses is withheld and the rest goes out; a search Bundle that lost
  one of its matches loses its `total` too (it would count what was withheld). A batch or
  transaction response's entry is replaced by a 403 outcome for that entry. An entry without a
  resource (a deletion in a history) cannot be checked and is withheld, except in a batch or
  transaction response (its status only).
- A bulk-export manifest (`$export-poll-status`, JSON that is not a resource) goes out: it only
  names the job's files, each checked when it is read.
- The refusal or the `filter` finding in the audit record names what was withheld; what the
  client reads names no resource that its request did not name.
- A monitored check's refusal is recorded (the first per answer) and the resource goes out.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any, Final

from gateway.classify import Interaction
from gateway.compartment import patients_named
from gateway.context import Finding, RequestContext
from gateway.denial import Denial, forbidden
from gateway.ndjson import is_ndjson, ndjson_resources
from gateway.returned import Returned, refusal

__all__ = ["Screened", "resources_of", "screen"]

_RESPONSES: Final = frozenset({"batch-response", "transaction-response"})
_BY_ID: Final = frozenset({Interaction.READ, Interaction.VREAD})
# what each control's refusal means, for the client's message (the audit keeps the detail)
_WHY: Final = {
    "C05": "no granted scope covers it",
    "C08": "it is outside the compartment of the patient in context",
    "C10": "it belongs to another tenant or to none",
}


@dataclass(slots=True)
class Screened:
    """The answer that may go out (`body`, changed or not) and the resources it holds."""

    body: Any
    changed: bool = False
    resources: list[Returned] = field(default_factory=list)


def client_reason(ctx: RequestContext, denial: Denial) -> str:
    """A response check's refusal as the client reads it: what it asked, which control, why;
    never the id of a resource it did not name."""
    why = _WHY.get(denial.control or "", "a check of the answer refused it")
    asked = ctx.raw_path if len(ctx.raw_path) <= 120 else ctx.raw_path[:117] + "..."
    return f"the answer to {ctx.method} {asked} holds a resource this token may not see: {why}"


def _by_id(ctx: RequestContext) -> bool:
    fhir = ctx.fhir
    return fhir is not None and fhir.interaction in _BY_ID and fhir.resource_id is not None


def _not_found(ctx: RequestContext) -> str:
    fhir = ctx.fhir
    assert fhir is not None
    what = f"{fhir.resource_type}/{fhir.resource_id}"
    if fhir.version_id:
        what += f"/_history/{fhir.version_id}"
    return f"{what} is not known to this token (it does not exist, or this token may not see it)"


def screen(ctx: RequestContext, body: Any, raw: bytes | None = None) -> Screened | Denial:
    """Apply the request's response checks to a parsed answer (`raw`: the text it was parsed
    from, scanned once for the patients it names, which spares walking each resource)."""
    named = patients_named(raw) if raw is not None else None
    if isinstance(body, dict) and body.get("resourceType") == "Bundle":
        return _bundle(ctx, body, named)
    if _is_manifest(ctx, body):
        return Screened(body)  # links to the job's files, each checked when it is read
    found = resources_of(body, named)
    for returned in found:
        denial = refusal(ctx.resource_checks, returned)
        if denial is not None:
            if _by_id(ctx):  # answered as for a resource that does not exist
                ctx.findings.append(Finding(denial.control, "deny", 404, denial.reason))
                return Denial(404, _not_found(ctx), denial.control)
            ctx.findings.append(Finding(denial.control, "deny", denial.status, denial.reason))
            return forbidden(client_reason(ctx, denial), denial.control)
    _monitor(ctx, found)
    return Screened(body, resources=found)


def _bundle(ctx: RequestContext, bundle: dict[str, Any], named: frozenset[str] | None) -> Screened:
    entries = bundle.get("entry")
    if not isinstance(entries, list):
        return Screened(bundle)
    responses = bundle.get("type") in _RESPONSES
    kept: list[Any] = []
    passed: list[Returned] = []
    withheld = 0
    first: Denial | None = None
    lost_match = False
    for entry in entries:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if resource is None and responses and isinstance(entry, dict):
            kept.append(entry)  # a batch response entry without a resource (status only)
            continue
        found = resources_of(resource, named)
        denial = next((d for r in found if (d := refusal(ctx.resource_checks, r))), None)
        if denial is None:
            kept.append(entry)
            passed.extend(found)
            continue
        withheld += 1
        first = first or denial
        if responses:
            kept.append(_refused_entry(ctx, denial))
        elif (entry.get("search") or {}).get("mode", "match") == "match":
            lost_match = True
    _monitor(ctx, passed)
    if not withheld:
        return Screened(bundle, resources=passed)
    assert first is not None
    ctx.findings.append(
        Finding(
            first.control,
            "filter",
            first.status,
            f"withheld {withheld} of {len(entries)} entries of the answer; the first: "
            f"{first.reason}",
        )
    )
    out = {**bundle, "entry": kept}
    if lost_match:
        out.pop("total", None)
    if not kept:
        out.pop("entry")
    return Screened(out, changed=True, resources=passed)


def _is_manifest(ctx: RequestContext, body: Any) -> bool:
    """A bulk-export status answer's manifest: JSON that is not a resource."""
    fhir = ctx.fhir
    return (
        fhir is not None
        and fhir.operation == "$export-poll-status"
        and isinstance(body, dict)
        and "resourceType" not in body
    )


def _refused_entry(ctx: RequestContext, denial: Denial) -> dict[str, Any]:
    diagnostics = f"[{denial.control}] {client_reason(ctx, denial)}; withheld"
    return {
        "response": {
            "status": "403 Forbidden",
            "outcome": {
                "resourceType": "OperationOutcome",
                "issue": [{"severity": "error", "code": "forbidden", "diagnostics": diagnostics}],
            },
        }
    }


def _monitor(ctx: RequestContext, resources: list[Returned]) -> None:
    if not ctx.monitor_checks:
        return
    for returned in resources:
        denial = refusal(ctx.monitor_checks, returned)
        if denial is not None:
            ctx.findings.append(Finding(denial.control, "monitor", denial.status, denial.reason))
            return


def resources_of(value: Any, named: frozenset[str] | None = None) -> list[Returned]:
    """The resources one answer (or one entry of it) holds, each read once for every check and
    the audit: a resource; a Bundle's entries, nested Bundles included; the resources a
    `Parameters` carries; the lines of an export file read as a `Binary`. What is not a resource
    (no `resourceType`) is returned as one anyway, so that every check refuses it."""
    found: list[Returned] = []
    _collect(value, found, named)
    return found


def _collect(value: Any, found: list[Returned], named: frozenset[str] | None) -> None:
    if not isinstance(value, dict):
        found.append(Returned({}))
        return
    rtype = value.get("resourceType")
    if rtype == "Bundle":
        entries = value.get("entry")
        inner = [e.get("resource") for e in entries if isinstance(e, dict)] if entries else []
        inner = [r for r in inner if r is not None]
        for resource in inner:
            _collect(resource, found, named)
        if not inner:
            found.append(Returned(value, named))
    elif rtype == "Binary":
        found.extend(binary_resources(value))  # base64: what it names is not in the text
    elif rtype == "Parameters":
        found.append(Returned(value, named))
        _parameters(value.get("parameter"), found, named)
    else:
        found.append(Returned(value, named))


def _parameters(parameters: Any, found: list[Returned], named: frozenset[str] | None) -> None:
    if not isinstance(parameters, list):
        return
    for parameter in parameters:
        if not isinstance(parameter, dict):
            continue
        if "resource" in parameter:
            _collect(parameter["resource"], found, named)
        _parameters(parameter.get("part"), found, named)


def binary_resources(binary: dict[str, Any]) -> list[Returned]:
    """A Binary whose content is NDJSON (an export file asked for as FHIR JSON) stands for the
    resources it holds, so the checks see them; any other Binary for itself."""
    content_type = binary.get("contentType")
    data = binary.get("data")
    if not (isinstance(content_type, str) and is_ndjson(content_type.encode("latin-1"))):
        return [Returned(binary)]
    if not isinstance(data, str):
        return []
    try:
        return ndjson_resources(base64.b64decode(data, validate=True))
    except ValueError:
        return [Returned({})]  # cannot be read, so cannot be checked: every check refuses it

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
import re
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import unquote_plus

import orjson

from gateway.context import Finding, RequestContext
from gateway.denial import Denial, forbidden
from gateway.formats import is_json, is_ndjson, media_type
from gateway.returned import Returned, first_refusal, refusal
from labcore.patient_compartment import AnswerText

__all__ = ["Screened", "resources_of", "screen"]

_RESPONSES: Final = frozenset({"batch-response", "transaction-response"})
_NOT_DATA: Final = frozenset({"OperationOutcome", "Parameters", "CapabilityStatement"})
# the types `_collect` looks inside (a tuple: compared, never hashed, as `_collect` does)
_HOLDERS: Final = ("Bundle", "Binary", "Parameters")
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


def _not_found(ctx: RequestContext) -> str:
    fhir = ctx.fhir
    assert fhir is not None
    what = f"{fhir.resource_type}/{fhir.resource_id}"
    if fhir.version_id:
        what += f"/_history/{fhir.version_id}"
    return f"{what} is not known to this token (it does not exist, or this token may not see it)"


def screen(ctx: RequestContext, body: Any, raw: bytes | None = None) -> Screened | Denial:
    """Apply the request's response checks to a parsed answer (`raw`: the text it was parsed
    from; when it names no other patient, no resource of it is walked for one: `AnswerText`)."""
    text = AnswerText(raw) if raw is not None else None
    if isinstance(body, dict) and body.get("resourceType") == "Bundle":
        return _bundle(ctx, body, text)
    if _is_manifest(ctx, body):
        return Screened(body)  # links to the job's files, each checked when it is read
    found = resources_of(body, text)
    for returned in found:
        denial = refusal(ctx.resource_checks, returned)
        if denial is not None:
            if ctx.fhir is not None and ctx.fhir.is_read_by_id:  # as for an id that does not exist
                ctx.findings.append(Finding(denial.control, "deny", 404, denial.reason))
                return Denial(404, _not_found(ctx), denial.control)
            ctx.findings.append(Finding(denial.control, "deny", denial.status, denial.reason))
            return forbidden(client_reason(ctx, denial), denial.control)
    _monitor(ctx, found)
    return Screened(body, resources=found)


def _bundle(ctx: RequestContext, bundle: dict[str, Any], text: AnswerText | None) -> Screened:
    entries = bundle.get("entry")
    if not isinstance(entries, list):
        return Screened(bundle)
    responses = bundle.get("type") in _RESPONSES
    checks = tuple(ctx.resource_checks)  # once per answer, not once per entry
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
        if type(resource) is dict and resource.get("resourceType") not in _HOLDERS:
            # most entries hold one plain resource: checked as `resources_of` + `first_refusal`
            # would, without a list per entry or the calls (this runs for every entry)
            returned = Returned(resource, text)
            denial = None
            for _control, check in checks:
                denial = check(returned)
                if denial is not None:
                    break
            if denial is None:
                kept.append(entry)
                passed.append(returned)
                continue
        else:
            found = resources_of(resource, text)
            denial = first_refusal(checks, found)
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


_NAMED_RESOURCE: Final = re.compile(r"\b([A-Z][A-Za-z]{1,63})/([A-Za-z0-9\-.]{1,64})")
_TOKEN: Final = re.compile(r"[A-Za-z0-9\-.]{1,64}")


def redact_outcomes(ctx: RequestContext, body: Any, has_outcome: bool = True) -> bool:
    """The server's OperationOutcomes (an error answer, a search's warnings, a batch entry's
    outcome) with every `Type/id` whose id the request did not name written `Type/[withheld]`
    (HAPI's texts name resources: a conflict's first referencing resource, a missing one).
    In place; True if anything was changed. `has_outcome`: False when the answer's text names
    no OperationOutcome (nothing to walk)."""
    outcomes = _outcomes(body) if has_outcome else []
    if not outcomes:
        return False
    asked = _asked_tokens(ctx)
    changed = False

    def sub(match: re.Match[str]) -> str:
        nonlocal changed
        if match.group(2) in asked:
            return match.group(0)
        changed = True
        return f"{match.group(1)}/[withheld]"

    def withhold(text: str) -> str:
        return _NAMED_RESOURCE.sub(sub, text)

    for outcome in outcomes:
        text = outcome.get("text")
        if isinstance(text, dict) and isinstance(text.get("div"), str):
            text["div"] = withhold(text["div"])
        for issue in outcome.get("issue") or []:
            if not isinstance(issue, dict):
                continue
            if isinstance(issue.get("diagnostics"), str):
                issue["diagnostics"] = withhold(issue["diagnostics"])
            details = issue.get("details")
            if isinstance(details, dict) and isinstance(details.get("text"), str):
                details["text"] = withhold(details["text"])
            for key in ("expression", "location"):
                values = issue.get(key)
                if isinstance(values, list):
                    issue[key] = [withhold(v) if isinstance(v, str) else v for v in values]
    return changed


def _outcomes(body: Any) -> list[dict[str, Any]]:
    """Every OperationOutcome in an answer, however deep (a batch entry's outcome, a search's
    warnings, one inside a nested Bundle or a Parameters)."""
    found: list[dict[str, Any]] = []
    stack = [body]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("resourceType") == "OperationOutcome":
                found.append(node)
            stack.extend(v for v in node.values() if isinstance(v, dict | list))
        elif isinstance(node, list):
            stack.extend(v for v in node if isinstance(v, dict | list))
    return found


def _asked_tokens(ctx: RequestContext) -> frozenset[str]:
    """Every id-like word of the request: its path, query (decoded) and body."""
    text = f"{ctx.raw_path} {unquote_plus(ctx.raw_query)}"
    if ctx.body:
        text += " " + ctx.body[:1_000_000].decode("utf-8", "replace")
    return frozenset(_TOKEN.findall(text))


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


def resources_of(value: Any, text: AnswerText | None = None) -> list[Returned]:
    """The resources one answer (or one entry of it) holds, each read once for every check and
    the audit: a resource; a Bundle's entries, nested Bundles included; the resources a
    `Parameters` carries; the lines of an export file read as a `Binary`. What is not a resource
    (no `resourceType`) is returned as one anyway, so that every check refuses it."""
    found: list[Returned] = []
    _collect(value, found, text)
    return found


def _collect(value: Any, found: list[Returned], text: AnswerText | None) -> None:
    if not isinstance(value, dict):
        found.append(Returned({}))
        return
    rtype = value.get("resourceType")
    if rtype == "Bundle":
        entries = value.get("entry")
        inner = [e.get("resource") for e in entries if isinstance(e, dict)] if entries else []
        inner = [r for r in inner if r is not None]
        for resource in inner:
            _collect(resource, found, text)
        if not inner:
            found.append(Returned(value, text))
    elif rtype == "Binary":
        found.extend(binary_resources(value))  # base64: what it names is not in the text
    elif rtype == "Parameters":
        found.append(Returned(value, text))
        _parameters(value.get("parameter"), found, text)
    else:
        found.append(Returned(value, text))


def _parameters(parameters: Any, found: list[Returned], text: AnswerText | None) -> None:
    if not isinstance(parameters, list):
        return
    for parameter in parameters:
        if not isinstance(parameter, dict):
            continue
        if "resource" in parameter:
            _collect(parameter["resource"], found, text)
        _parameters(parameter.get("part"), found, text)


def binary_resources(binary: dict[str, Any]) -> list[Returned]:
    """A Binary whose content is FHIR (an export file's NDJSON, a resource as JSON) stands for
    the resources it holds, so the checks see them; content the gateway cannot read as FHIR
    (FHIR XML, or what does not parse) cannot be checked and stands as nothing any check
    passes; any other content (a PDF, an image) is judged as the Binary itself (its tenant tag;
    C08 keeps patient-context tokens off Binary)."""
    content_type = binary.get("contentType")
    data = binary.get("data")
    if not isinstance(data, str) or not isinstance(content_type, str):
        return [Returned(binary)]
    kind = content_type.encode("latin-1", "replace")
    fhir_xml = b"xml" in media_type(kind) and b"fhir" in media_type(kind)
    if not (is_ndjson(kind) or is_json(kind) or fhir_xml):
        return [Returned(binary)]
    try:
        content = base64.b64decode(data, validate=True)
    except ValueError:
        return [Returned({})]  # cannot be read, so cannot be checked: every check refuses it
    if is_ndjson(kind):
        return ndjson_resources(content)
    if fhir_xml:
        return [Returned({})]
    return line_resources(content)


def ndjson_resources(data: bytes) -> list[Returned]:
    """The resources of an NDJSON document, line by line (`line_resources`)."""
    found: list[Returned] = []
    for line in data.split(b"\n"):
        if line.strip():
            found.extend(line_resources(line))
    return found


def line_resources(text: bytes) -> list[Returned]:
    """The resources of one JSON text of stored content (an export file's line, a Binary's
    data): a resource, a Bundle's entries, ... (`resources_of`). What does not parse stands as
    nothing any check passes, and so does an OperationOutcome or Parameters in it: there they
    are not the server's word about the exchange but data in free text that no check reads."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return [Returned({})]
    return [Returned({}) if r.resource_type in _NOT_DATA else r for r in resources_of(value)]

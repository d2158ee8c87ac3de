"""Stage `scopes`: every request is covered by a granted SMART scope (C05).

The scope engine (`labcore/scopes.py`) decides per resource type and permission (c r u d s).
Operations need read access to their type; every resource of every answer (included, rev-included,
contained, `$everything`'s, a history's, a page's) must be of a type the token may read
(`ReadableType`), so `Patient/P/$everything` with `patient/Patient.rs` returns the Patient and
nothing else. `$everything` without an id spans every patient: only a wildcard read covers it.
For an operational AI client, a request granted only by a wildcard scope (`patient/*.read`) is a
C05 violation too: such clients must hold resource-specific scopes. A constrained scope
(`patient/Observation.rs?category=...|laboratory`) adds a check on each returned resource.

Bulk export: a kick-off must be covered for every type it asks for (`_type`; without one it
exports every type, which only a wildcard read covers), and each resource of an output file must
be of a type the token may read (`ReadableType`, checked line by line as the file streams,
`gateway/ndjson.py`): the job was made by the server, whatever the token it is handed to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from gateway.classify import Interaction
from gateway.context import RequestContext
from gateway.denial import Denial, forbidden
from gateway.policy import ClientPolicy
from gateway.returned import Returned
from gateway.stages import Check, Stage
from labcore.scopes import ScopeSet, interaction_permission

_FREE = frozenset({Interaction.CAPABILITIES, Interaction.SMART_CONFIGURATION, Interaction.BATCH})
# Operations that change data need the permission of the change, not read (names as classify
# gives them: lower case).
WRITING_OPERATIONS: Final[dict[str, str]] = {
    "$meta-add": "u",
    "$meta-delete": "u",
    "$binary-access-write": "u",
    "$merge": "u",
    "$hapi.fhir.replace-references": "u",
    "$expunge": "d",
    "$delete-expunge": "d",
    "$process-message": "c",
}


def needed(ctx: RequestContext) -> tuple[str, str] | None:
    """(resource type, permission) the request needs, or None if scopes do not apply."""
    fhir = ctx.fhir
    if fhir is None or fhir.interaction in _FREE:
        return None
    if fhir.operation == "$export-poll-status" or fhir.reads_binary:  # writing one needs a scope
        return None  # the bulk-export flow after kick-off: governed by C04 (export allowlist)
    if fhir.is_page:
        return None  # a page of a search already made: each resource it returns is checked
    if fhir.operation == "$export":
        return None  # each type the kick-off asks for is checked (`ScopesStage.export_types`)
    if fhir.interaction is Interaction.OPERATION:
        # `Patient/P/$everything` needs read access to the patient; what it returns is checked
        # resource by resource (`ReadableType`). Without an id it covers every patient.
        if fhir.operation == "$everything" and fhir.resource_id is None:
            return "*", "r"
        permission = WRITING_OPERATIONS.get(fhir.operation or "", "r")
        return (fhir.resource_type or "*"), permission
    if fhir.resource_type is None:  # system-level search or history
        return "*", interaction_permission(fhir.interaction)
    return fhir.resource_type, interaction_permission(fhir.interaction)


def _codings(value: Any) -> list[tuple[str, str]]:
    concepts = value if isinstance(value, list) else [value]
    found = []
    for concept in concepts:
        if isinstance(concept, dict):
            for coding in concept.get("coding", []) or []:
                if isinstance(coding, dict):
                    found.append((str(coding.get("system", "")), str(coding.get("code", ""))))
    return found


def satisfies(resource: dict[str, Any], constraints: tuple[tuple[str, str], ...]) -> bool:
    """Does a resource meet a scope's constraints (token params such as category, code)?"""
    for param, value in constraints:
        system, _, code = value.rpartition("|")
        codings = _codings(resource.get(param))
        if not any(c == code and (not system or s == system) for s, c in codings):
            return False
    return True


class ScopesStage(Stage):
    name = "scopes"
    reads = frozenset({"token", "client_class", "fhir", "upstream_params"})
    writes = frozenset({"resource_checks"})

    def __init__(self, client_policy: ClientPolicy) -> None:
        self.operational = frozenset(client_policy.operational_classes)

    def checks(self) -> list[tuple[str | None, Check]]:
        return [("C05", self.covered)]

    async def covered(self, ctx: RequestContext) -> None:
        fhir = ctx.fhir
        if ctx.token is not None and fhir is not None and not fhir.is_write:
            # whatever rides along in the answer is held to the token's scopes too
            ctx.resource_checks.append(("C05", ReadableType(ctx.token.scopes)))
        if ctx.token is not None and fhir is not None and fhir.reads_binary:
            return  # export output: each resource it holds is checked (ReadableType)
        if ctx.token is not None and fhir is not None and fhir.operation == "$export":
            self.export_types(ctx)
        need = needed(ctx)
        if need is None or ctx.token is None:
            return
        resource_type, permission = need
        decision = ctx.token.scopes.decision(resource_type, permission, ctx.params)
        if not decision.allowed:
            raise forbidden(decision.reason, "C05")
        operational = ctx.client_class is None or ctx.client_class in self.operational
        if operational and decision.matched is not None and decision.matched.is_wildcard:
            raise forbidden(
                f"{decision.reason}, a wildcard scope; operational AI clients must hold "
                "resource-specific scopes",
                "C05",
            )
        if decision.conditional:
            options = decision.result_filter_any or (decision.needs_result_filter,)

            scope = decision.matched.raw if decision.matched else ""
            ctx.resource_checks.append(("C05", WithinScope(resource_type, options, scope)))

    def export_types(self, ctx: RequestContext) -> None:
        """Every type a bulk export asks for must be readable with the token's scopes."""
        assert ctx.token is not None
        scopes = ctx.token.scopes
        for resource_type in export_types(ctx.params):
            decision = scopes.permits(scopes.contexts, resource_type, "r")
            if not decision.allowed:
                asked = "every type (no _type)" if resource_type == "*" else resource_type
                raise forbidden(f"the export asks for {asked}: {decision.reason}", "C05")


def export_types(params: Any) -> list[str]:
    """The resource types a bulk export kick-off asks for (`_type`), `["*"]` for all."""
    types = [t.strip() for name, value in params if name == "_type" for t in value.split(",")]
    return [t for t in types if t] or ["*"]


# Resources the server writes about the exchange itself, not data a scope grants: an answer's
# outcome, the envelope of an empty Bundle, the Parameters an operation answers with (the
# resources it carries are checked one by one).
_ENVELOPES: Final = frozenset({"OperationOutcome", "Bundle", "Parameters"})


@dataclass(frozen=True, slots=True)
class ReadableType:
    """Each returned resource must be of a type the token may read, and meet a constrained
    scope's constraints: an included or rev-included resource, an entry of `$everything` or of
    a history, a line of an export file, and each resource it contains."""

    scopes: ScopeSet

    def __call__(self, returned: Returned) -> Denial | None:
        resource = returned.resource
        rtype = returned.resource_type
        if rtype is not None and rtype not in _ENVELOPES and not resource.get("contained"):
            # the usual resource (asked of every one returned): granted without constraints,
            # containing nothing, it passes; decided as below, without the calls
            decision = self.scopes.read_decision(rtype)
            if decision.allowed and not decision.needs_result_filter:
                return None
        denial = self._one(rtype, resource)
        if denial is not None:
            return denial
        contained = resource.get("contained")
        if contained:
            for inner in contained if isinstance(contained, list) else [None]:
                rtype = inner.get("resourceType") if isinstance(inner, dict) else None
                denial = self._one(rtype if isinstance(rtype, str) else None, inner or {})
                if denial is not None:
                    return forbidden(
                        f"{returned.resource_type}/{resource.get('id')} contains a "
                        f"{rtype or 'resource of no type'}, which no granted scope lets this "
                        "token read",
                        "C05",
                    )
        return None

    def _one(self, rtype: str | None, resource: dict[str, Any]) -> Denial | None:
        if rtype in _ENVELOPES:
            return None
        if rtype is None:  # not a FHIR resource: no scope covers it, a wildcard neither
            return forbidden("something that is not a FHIR resource was returned", "C05")
        decision = self.scopes.read_decision(rtype)
        if decision.allowed and not decision.conditional:
            return None
        options = decision.result_filter_any or (decision.needs_result_filter,)
        if decision.allowed and any(satisfies(resource, o) for o in options):
            return None
        return forbidden(
            f"{rtype}/{resource.get('id')} was returned, but no granted scope lets this token "
            "read it",
            "C05",
        )


@dataclass(frozen=True, slots=True)
class WithinScope:
    """Each returned resource of the scope's type must meet one of its constraint sets (a
    value: equal checks from a batch's entries count once)."""

    resource_type: str
    options: tuple[tuple[tuple[str, str], ...], ...]
    scope: str

    def __call__(self, returned: Returned) -> Denial | None:
        resource = returned.resource
        if resource.get("resourceType") != self.resource_type and self.resource_type != "*":
            return None
        if any(satisfies(resource, option) for option in self.options):
            return None
        return forbidden(
            f"{resource.get('resourceType')}/{resource.get('id')} is outside the "
            f"granted scope {self.scope}",
            "C05",
        )

"""Stage `compartment`: a patient-context token reaches only its patient's compartment (C08).

A token with a patient in context (SMART `launch/patient`, the `patient` claim) is confined to
that patient's compartment as the FHIR R4 Patient CompartmentDefinition draws it
(`labcore/patient_compartment.py`). Tokens without a patient (backend services, practitioners) pass
untouched. Every request that goes on also gets a check of each resource in the response: a
compartment type must reference the patient; a type never in the compartment (Organization,
Practitioner, Medication, Location, ...: reference data, which a patient app needs to render its
own record) must name no other patient anywhere in it; an unknown type is refused.

| request                                  | rule                                                  |
|------------------------------------------|-------------------------------------------------------|
| read, vread, history of an instance      | `Patient/<other>` refused up front; other types: the  |
|                                          | response check                                        |
| search on a compartment type             | pinned (`patient=P`, `subject=Patient/P`, `_id=P` on  |
|                                          | Patient) passes; another patient is refused; neither: |
|                                          | narrowed by adding the type's compartment parameter   |
| search on a type never in the compartment| passes without chains, `_has`, `_filter` or a         |
|                                          | `_revinclude` of compartment types                    |
| `Patient/P/<type>`                       | only the patient's own compartment                    |
| system search, type or system history    | refused: cannot be narrowed to one patient (a HAPI    |
|                                          | page, `[base]?_getpages=`, passes with the check)     |
| create, update                           | the body must reference the patient (Patient: by id); |
|                                          | a Patient must link to no other patient; update by    |
|                                          | id: the stored version too, if there is one; a        |
|                                          | conditional create's `If-None-Exist` is narrowed to   |
|                                          | the patient like a search                             |
| patch, delete                            | `Patient/P`; other types by id: the stored version    |
|                                          | must be the patient's; a patch must not touch patient |
|                                          | references (`Patient/P`: `link`, `id`; no `_cascade`) |
| conditional update, patch, delete        | refused: the match could be another patient's         |
| `$export` (any level, and its polling)   | refused                                               |
| `Patient/P/$op`, `Encounter/x/$everything` | allowed with the response check; other operations   |
|                                          | on compartment types refused; on reference data       |
|                                          | (`ValueSet/$expand`) allowed with the response check  |
| Binary, unknown types                    | refused                                               |

Decisions where R4 leaves room:
- Chains (`subject.name=Smith`) are allowed only on a search confined to the patient (pinned,
  narrowed, or a `Patient/P/...` search): they can then only select among the patient's own
  resources. On reference-data searches they are refused: the gateway cannot tell a chain into
  reference data from one into another patient's record.
- `_has` is allowed only on Patient searches (confined to `_id=P`), through a parameter that puts
  the inner type in the compartment (`_has:Observation:patient:code=...`), not nested: the inner
  resources are then the patient's own. Elsewhere it would reveal other patients' data.
- `_include` / `_revinclude` pass (the response check covers included entries); `*` is refused.
- Update, patch and delete by id read the stored version from HAPI first (read-before-write,
  `gateway/current.py`): one that is not the patient's is refused, so an update cannot overwrite
  another patient's resource with this patient's content. An update of an id with no stored
  version creates it and is checked on its body. Patches (JSON Patch, FHIRPath Patch) must not
  touch the elements that tie the resource to its patient; on `Patient/P` that is `link` (a
  Patient linked to another patient is in that patient's compartment) and `id`. A Patient written
  whole (create, update) may link to no patient but P. Without a reader (unit tests) patch
  and delete are refused outside `Patient/P` and update is checked on its body only.
- A write needs its body: if the gateway did not buffer it (`ctx.body is None`), it is refused.
- Binary is not in the R4 compartment and its content (an attachment, an export file) could be
  anyone's: refused, with `DocumentReference/x/$binary-access-read` (an operation).
- `_elements` on a compartment type gets the elements the response check reads added to it;
  `_elements` and `_summary=text|true` are refused on reference data, whose scan must see it all.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Final

from gateway.classify import (
    ClassifyError,
    FhirRequest,
    Interaction,
    ParamName,
    parse_include_value,
    parse_search_param_name,
)
from gateway.context import RequestContext, ResourceCheck
from gateway.current import CurrentResources, stored_version
from gateway.denial import Denial, bad_request, forbidden
from gateway.returned import Returned
from gateway.stages import Check, Stage
from labcore.patient_compartment import (
    Membership,
    in_compartment_types,
    membership,
    not_in_compartment_types,
    patient_element_paths,
    patient_id_from_reference,
    patient_search_params,
    references_patient,
)

__all__ = ["CompartmentStage", "describe", "narrowing", "patched_elements", "response_check"]

C08: Final = "C08"
_ID: Final = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_UNCHECKED: Final = frozenset(
    {Interaction.CAPABILITIES, Interaction.SMART_CONFIGURATION, Interaction.BATCH}
)  # a batch's entries are each run through the stage by the pipeline
_UNBOUNDED: Final = {
    Interaction.SEARCH_SYSTEM: "searches every resource type",
    Interaction.HISTORY_TYPE: "lists the history of every patient's resources",
    Interaction.HISTORY_SYSTEM: "lists the history of the whole server",
}
_HISTORY: Final = frozenset(
    {Interaction.HISTORY_INSTANCE, Interaction.HISTORY_TYPE, Interaction.HISTORY_SYSTEM}
)
# Reads and searches, whose response shape (`_elements`, `_summary`) the stage looks at.
_SHAPED: Final = frozenset(
    {Interaction.READ, Interaction.VREAD, Interaction.HISTORY_INSTANCE, Interaction.SEARCH_TYPE}
)
_EXPORT: Final = frozenset({"$export", "$export-poll-status"})
# Narrowing uses the first of these the type has, else its first compartment parameter
# (Coverage: `beneficiary`, the patient covered, rather than `policy-holder`).
_NARROW_PREFERENCE: Final = ("patient", "subject", "beneficiary")
_FULL_SUMMARIES: Final = frozenset({"false", "data", "count"})
_MAX_SHOWN: Final = 160


def describe(fhir: FhirRequest) -> str:
    """The request as a client would write it, for messages: `Observation?patient=x`."""
    if fhir.compartment is not None:
        parts = [*fhir.compartment, fhir.resource_type or "*"]
    else:
        parts = [p for p in (fhir.resource_type, fhir.resource_id) if p]
        if fhir.interaction in _HISTORY or fhir.version_id:
            parts.append("_history")
        if fhir.version_id:
            parts.append(fhir.version_id)
        if fhir.operation:
            parts.append(fhir.operation)
    text = "/".join(parts) or "[base]"
    if fhir.params:
        text += "?" + "&".join(f"{name}={value}" for name, value in fhir.params)
    if len(text) > _MAX_SHOWN:
        text = text[: _MAX_SHOWN - 3] + "..."
    return text if fhir.method in ("GET", "HEAD") else f"{fhir.method} {text}"


def narrowing(resource_type: str, patient: str) -> tuple[str, str]:
    """The parameter that confines a search of `resource_type` to `patient`'s compartment."""
    if resource_type == "Patient":
        return "_id", patient
    params = patient_search_params(resource_type)
    name = next((p for p in _NARROW_PREFERENCE if p in params), params[0])
    # `patient` parameters target Patient only, so a bare id is unambiguous; other reference
    # parameters (subject, actor, ...) also target Group, Practitioner...: name the type.
    return name, patient if name == "patient" else f"Patient/{patient}"


def _pieces(value: str) -> list[str]:
    """A search value's OR alternatives. A value with an escape (`\\,`) is kept whole: it then
    names no patient, so it can neither pin a search nor slip past the narrowing."""
    return [value] if "\\" in value else value.split(",")


def _bare_id_is_patient(resource_type: str, name: ParamName) -> bool:
    """Does a bare id in this parameter stand for a Patient id?"""
    if name.chain:
        return False  # the value belongs to the chain's last link
    if name.base == "patient" and name.modifier is None:
        return True
    return name.modifier == "Patient" or (
        resource_type == "Patient" and name.base == "_id" and name.modifier is None
    )


@dataclass(slots=True)
class _Facts:
    """What the parameters of a search do, beyond the rules checked while reading them."""

    pinned: bool = False
    chains: list[str] = field(default_factory=list)
    has: list[ParamName] = field(default_factory=list)
    revinclude_types: set[str] = field(default_factory=set)
    filtered: bool = False


class _Confinement:
    """One request of a patient-context token, checked against the compartment."""

    def __init__(
        self, ctx: RequestContext, fhir: FhirRequest, patient: str, can_read_stored: bool = False
    ) -> None:
        self.ctx = ctx
        self.fhir = fhir
        self.patient = patient
        self.what = describe(fhir)
        self.can_read_stored = can_read_stored
        # (type, id) whose stored version must be the patient's before the write goes
        self.stored: tuple[str, str] | None = None

    def refuse(self, problem: str) -> Denial:
        return forbidden(f"token is bound to patient {self.patient}; {self.what} {problem}", C08)

    def invalid(self, problem: str) -> Denial:
        return bad_request(f"token is bound to patient {self.patient}; {self.what}: {problem}")

    def run(self) -> None:
        fhir = self.fhir
        if fhir.interaction is Interaction.BATCH:
            # its entries are confined one by one (the pipeline runs the stage on each); its
            # answer is checked as a whole, whatever the entries were
            self.ctx.resource_checks.append((C08, response_check(self.patient, self.what)))
            return
        if fhir.interaction in _UNCHECKED:
            return
        if fhir.is_page:
            pass  # the response check is all a page of a confined search needs
        elif fhir.interaction in _UNBOUNDED:
            raise self.refuse(
                f"{_UNBOUNDED[fhir.interaction]}; it cannot be narrowed to one patient"
            )
        elif fhir.operation in _EXPORT:
            raise self.refuse("is a bulk export, not open to a patient-context token")
        elif fhir.interaction is Interaction.SEARCH_COMPARTMENT:
            self.compartment_search()
        elif fhir.resource_type is None:
            raise self.refuse("is a system-level operation; it cannot be confined to one patient")
        else:
            self.typed(fhir.resource_type)
        self.ctx.resource_checks.append((C08, response_check(self.patient, self.what)))

    def typed(self, resource_type: str) -> None:
        """A request on one resource type (or one instance of it)."""
        fhir = self.fhir
        kind = self.kind(resource_type)
        if fhir.interaction is Interaction.OPERATION:
            self.operation(resource_type, kind)
        elif fhir.is_write:
            self.write(resource_type, kind)
        elif fhir.interaction is Interaction.SEARCH_TYPE:
            self.search(resource_type, kind)
        elif resource_type == "Patient" and fhir.resource_id != self.patient:
            raise self.refuse("asks for another patient")  # read, vread, history-instance
        if fhir.interaction in _SHAPED:
            self.shape(resource_type, kind)

    def kind(self, resource_type: str) -> Membership:
        if resource_type == "Binary":
            raise self.refuse(
                "asks for Binary, which is outside the Patient compartment: its content (an "
                "attachment, an export file) could be anyone's"
            )
        kind = membership(resource_type)
        if kind is Membership.UNKNOWN:
            raise self.refuse(f"names {resource_type!r}, which is not an R4 resource type")
        return kind

    # -- searches ----------------------------------------------------------------------------

    def search(self, resource_type: str, kind: Membership) -> None:
        facts = self.read_params(resource_type)
        if kind is Membership.NEVER:
            # Reference data: nothing narrows it, so no parameter may reach into patient data.
            if facts.chains:
                raise self.refuse(
                    f"chains {facts.chains[0]} on {resource_type}, which no patient parameter "
                    "confines; chained searches need a search confined to the patient"
                )
            if facts.has:
                raise self.refuse("uses _has, which can reveal other patients' data")
            if facts.filtered:
                raise self.refuse("uses _filter, which can reach other patients' data")
            reaching = sorted(t for t in facts.revinclude_types if membership(t) is Membership.IN)
            if reaching:
                raise self.refuse(
                    f"reverse-includes {reaching[0]}, which would bring in every patient's "
                    f"resources that point at the {resource_type} found"
                )
            return
        self.check_has(resource_type, facts)
        if not facts.pinned:
            self.ctx.upstream_params = (*self.ctx.params, narrowing(resource_type, self.patient))

    def compartment_search(self) -> None:
        compartment, cid = self.fhir.compartment or ("", "")
        if compartment != "Patient":
            raise self.refuse(
                f"searches the compartment of {compartment}/{cid}; only the patient's own "
                "compartment is open"
            )
        if cid != self.patient:
            raise self.refuse("asks for another patient")
        target = self.fhir.resource_type or "*"
        kind = Membership.IN if target == "*" else self.kind(target)
        if kind is Membership.NEVER:
            raise self.invalid(f"{target} is never in a Patient compartment")
        self.check_has(target, self.read_params(target))
        if target != "*":
            self.shape(target, kind)

    def read_params(self, resource_type: str) -> _Facts:
        """Read every parameter: refuse those naming another patient, `*` includes and named
        queries; note whether the search is pinned to the patient and what else it does."""
        facts = _Facts()
        pins = set(patient_search_params(resource_type))
        if resource_type == "Patient":
            pins.add("_id")
        for raw_name, value in self.ctx.params:
            try:
                name = parse_search_param_name(raw_name)
            except ClassifyError as exc:
                raise self.invalid(exc.message) from None
            if name.base in ("_include", "_revinclude"):
                self.check_include(name, value, facts)
            elif name.base == "_has":
                facts.has.append(name)
            elif name.base == "_filter":
                facts.filtered = True
            elif name.base == "_query":
                raise self.refuse("uses a named query (_query), which may ignore the narrowing")
            if name.chain and name.base != "_has":  # a _has "chain" is its inner parameter
                facts.chains.append(raw_name)
            bare = _bare_id_is_patient(resource_type, name)
            named = set()
            for piece in _pieces(value):
                pid = patient_id_from_reference(piece)
                if pid is None and bare and _ID.fullmatch(piece):
                    pid = piece
                named.add(pid)
            if named - {None, self.patient}:
                raise self.refuse("asks for another patient")
            # Pinned: a compartment parameter, unchained, whose every alternative is the patient
            # as `Patient/P` (or bare `P` where that can only be a Patient). An absolute URL
            # does not pin: it could name a Patient on another server.
            own = {self.patient, f"Patient/{self.patient}"} if bare else {f"Patient/{self.patient}"}
            if (
                name.base in pins
                and not name.chain
                and name.modifier in (None, "Patient")
                and set(_pieces(value)) <= own
            ):
                facts.pinned = True
        return facts

    def check_include(self, name: ParamName, value: str, facts: _Facts) -> None:
        try:
            include = parse_include_value(value)
        except ClassifyError as exc:
            raise self.invalid(exc.message) from None
        if "*" in (include.source_type, include.search_param):
            raise self.refuse(f"uses {name.base}={value}: a wildcard include is unbounded")
        if name.base == "_revinclude":
            facts.revinclude_types.add(include.source_type)

    def check_has(self, resource_type: str, facts: _Facts) -> None:
        """`_has` only on Patient (confined to `_id=P`), through a parameter that puts the inner
        type in the compartment (one of its compartment parameters, or `patient`: in R4 that
        is always the Patient the resource is about), not nested: the inner resources are
        then the patient's own, and `_has` only tells which of them exist."""
        for has in facts.has:
            inner_type, _, link = (has.modifier or "").partition(":")
            if resource_type != "Patient":
                raise self.refuse(
                    f"uses _has on {resource_type}; _has is open only on Patient searches"
                )
            links = {*patient_search_params(inner_type), "patient"}
            if membership(inner_type) is not Membership.IN or link not in links:
                raise self.refuse(
                    f"uses _has:{inner_type}:{link}, which does not keep {inner_type} in the "
                    "patient's compartment"
                )
            if parse_search_param_name(has.chain[0]).base == "_has":
                raise self.refuse("nests _has inside _has")

    # -- reads' shaping, writes, operations -------------------------------------------------

    def shape(self, resource_type: str, kind: Membership) -> None:
        """Keep in the response what its check reads: `_elements` could strip the patient
        reference (the check would then refuse a response that is in fact the patient's)."""
        params = self.ctx.params
        if kind is Membership.NEVER:
            for name, value in params:
                if name.startswith("_elements") or (
                    name == "_summary" and value not in _FULL_SUMMARIES
                ):
                    raise self.refuse(
                        f"uses {name}={value} on {resource_type}: the scan of reference data "
                        "for other patients must see the whole resource"
                    )
            return
        if not any(name == "_elements" for name, _ in params):
            return  # nothing would change (most requests)
        needed = [p.split(".")[0] for p in patient_element_paths(resource_type)]
        shaped: list[tuple[str, str]] = []
        for name, value in params:
            if name == "_elements":
                listed = [e.strip() for e in value.split(",") if e.strip()]
                short = {e.rpartition(".")[2] for e in listed}  # `Observation.code` or `code`
                missing = [e for e in dict.fromkeys(needed) if e not in short]
                value = ",".join(listed + missing) if missing else value
            shaped.append((name, value))
        if tuple(shaped) != params:
            self.ctx.upstream_params = tuple(shaped)

    def write(self, resource_type: str, kind: Membership) -> None:
        fhir = self.fhir
        if fhir.is_conditional:
            raise self.refuse(
                f"is a conditional {fhir.interaction}: its match could be another patient's"
            )
        if kind is not Membership.IN:
            raise self.refuse(f"writes {resource_type}, which is never in a Patient compartment")
        if resource_type == "Patient" and fhir.resource_id not in (None, self.patient):
            raise self.refuse("asks to write another patient")
        # by id, on a type other than Patient (whose id says whose it is): the stored version
        # decides, read from the server before the write goes (`CompartmentStage.confine`)
        by_id = resource_type != "Patient" and fhir.resource_id is not None
        if fhir.interaction is Interaction.DELETE or fhir.interaction is Interaction.PATCH:
            if by_id and not self.can_read_stored:
                raise self.refuse(
                    f"is a {fhir.interaction} of a resource the gateway cannot see: it cannot "
                    "tell whether it is in the patient's compartment"
                )
            if "_cascade" in fhir.param_names:  # HAPI deletes whatever references it, anyone's
                raise self.refuse("cascades the delete to resources outside the compartment")
            if fhir.interaction is Interaction.PATCH:
                self.check_patch(resource_type)
            if by_id:
                self.stored = (resource_type, fhir.resource_id or "")
            return
        resource = self.body(resource_type)
        if fhir.interaction is Interaction.CREATE:
            resource = {k: v for k, v in resource.items() if k != "id"}  # the server assigns it
        if not references_patient(resource, self.patient):
            raise self.refuse(f"sends {resource_type} content that does not reference the patient")
        if resource_type == "Patient":
            others = sorted(_linked_patients(resource) - {self.patient})
            if others:
                raise self.refuse(
                    f"links the Patient to Patient/{others[0]}, which would put it in that "
                    "patient's compartment"
                )
        if by_id and fhir.interaction is Interaction.UPDATE and self.can_read_stored:
            self.stored = (resource_type, fhir.resource_id or "")
        if fhir.interaction is Interaction.CREATE:  # a conditional create matches the patient's
            self.ctx.narrow_if_none_exist(*narrowing(resource_type, self.patient))

    def check_stored(self, stored: dict[str, Any] | None) -> None:
        """The version a by-id update, patch or delete would change must be the patient's. None
        (never created, or deleted): an update creates it (its body was checked); a patch or
        delete finds nothing and the server says so."""
        if stored is None or references_patient(stored, self.patient):
            return
        rtype, rid = self.stored or ("", "")
        raise self.refuse(
            f"would {_VERBS[self.fhir.interaction]} {rtype}/{rid}, which is not in the "
            "patient's compartment"
        )

    def check_patch(self, resource_type: str) -> None:
        """A patch must leave the patient references alone: it could otherwise move the
        patient's resource into another patient's compartment (or take it out of any)."""
        guarded = {p.split(".")[0] for p in patient_element_paths(resource_type)}
        if resource_type == "Patient":
            guarded.add("id")  # with `link`: what puts a Patient in a compartment
        if self.ctx.body is None:
            raise self.refuse("sends a body the gateway did not buffer, so it cannot check it")
        try:
            patch = json.loads(self.ctx.body)
        except ValueError:
            raise self.refuse(
                "sends a patch the gateway cannot read: only JSON Patch and FHIRPath Patch "
                "(JSON) are checked"
            ) from None
        touched = patched_elements(patch, resource_type)
        if touched is None:
            raise self.invalid("the body is neither a JSON Patch nor a FHIRPath Patch")
        hit = sorted(touched & (guarded | {""}))
        if hit:
            what = "the whole resource" if hit[0] == "" else f"{resource_type}.{hit[0]}"
            raise self.refuse(
                f"patches {what}, which decides whose compartment the resource is in; patches "
                "must leave patient references alone"
            )

    def body(self, resource_type: str) -> dict[str, Any]:
        if self.ctx.body is None:
            raise self.refuse("sends a body the gateway did not buffer, so it cannot check it")
        try:
            resource = json.loads(self.ctx.body)
        except ValueError:
            raise self.invalid("the body must be FHIR JSON for the gateway to check it") from None
        if not isinstance(resource, dict) or resource.get("resourceType") != resource_type:
            raise self.invalid(f"the body is not a {resource_type} resource")
        rid = self.fhir.resource_id
        if rid is not None and resource.get("id") != rid:
            raise self.invalid(f"the body's id {resource.get('id')!r} is not {rid!r}")
        return resource

    def operation(self, resource_type: str, kind: Membership) -> None:
        fhir = self.fhir
        if kind is Membership.NEVER:
            return  # terminology and other reference data ($expand, $lookup): response check
        if fhir.level == "type":
            raise self.refuse(
                f"runs {fhir.operation} over every {resource_type}; it cannot be confined to one "
                "patient"
            )
        if resource_type == "Patient":
            if fhir.resource_id != self.patient:
                raise self.refuse("asks for another patient")
            return
        if fhir.operation != "$everything":  # e.g. Encounter/x/$everything
            raise self.refuse(
                f"runs {fhir.operation} on {resource_type}/{fhir.resource_id}; the gateway cannot "
                "tell whether that instance is the patient's before the operation runs"
            )


def _linked_patients(patient: dict[str, Any]) -> set[str]:
    """The patients a Patient resource's `link.other` points at."""
    found: set[str] = set()
    links = patient.get("link")
    for link in links if isinstance(links, list) else []:
        other = link.get("other") if isinstance(link, dict) else None
        ref = other.get("reference") if isinstance(other, dict) else None
        pid = patient_id_from_reference(ref) if isinstance(ref, str) else None
        if pid is not None:
            found.add(pid)
    return found


# `membership` of every R4 type, for the check of each returned resource (a lookup, not a call)
_KIND: Final[dict[str | None, Membership]] = {
    **dict.fromkeys(not_in_compartment_types(), Membership.NEVER),
    **dict.fromkeys(in_compartment_types(), Membership.IN),
}


def _contains_patient(resource: dict[str, Any]) -> bool:
    contained = resource.get("contained")
    if not contained:
        return False
    if not isinstance(contained, list):
        return True  # cannot be read: treated as the worst case
    return any(not isinstance(c, dict) or c.get("resourceType") == "Patient" for c in contained)


@dataclass(frozen=True, slots=True)
class InCompartment:
    """The check of each returned resource (a match, an include, an entry of `$everything`).

    A value: two checks for the same patient are equal (`asked` only words the message), so the
    entries of a batch add one check between them, not one each."""

    patient: str
    asked: str = field(compare=False)

    def __call__(self, returned: Returned) -> Denial | None:
        patient = self.patient
        kind = _KIND.get(returned.resource_type, Membership.UNKNOWN)  # `membership`, looked up
        if kind is Membership.UNKNOWN:
            unknown = returned.resource.get("resourceType")
            return forbidden(f"{self._prefix} a resource of unknown type {unknown!r}", C08)
        if kind is Membership.IN and patient not in returned.compartment_patients:
            return forbidden(
                f"{self._prefix} {self._named(returned)}, which is not in that patient's "
                "compartment",
                C08,
            )
        # in the compartment or reference data: it must name no other patient anywhere (a
        # Group's members, a List's items, another patient as performer or link), and carry
        # no Patient of its own (a contained one is someone the references cannot name)
        foreign = returned.other_patients(patient)
        if foreign:
            return forbidden(
                f"{self._prefix} {self._named(returned)}, which refers to patient {min(foreign)}",
                C08,
            )
        if returned.resource.get("contained") and _contains_patient(returned.resource):
            return forbidden(
                f"{self._prefix} {self._named(returned)}, which contains a Patient", C08
            )
        return None

    @staticmethod
    def _named(returned: Returned) -> str:
        # for a refusal's message only: passing resources are not asked their id
        return f"{returned.resource_type}/{returned.resource.get('id')}"

    @property
    def _prefix(self) -> str:
        return f"token is bound to patient {self.patient}; {self.asked} returned"


def response_check(patient: str, asked: str) -> ResourceCheck:
    """Checks one returned resource (see `InCompartment`)."""
    return InCompartment(patient, asked)


_VERBS: Final = {
    Interaction.UPDATE: "overwrite",
    Interaction.PATCH: "patch",
    Interaction.DELETE: "delete",
}


def patched_elements(patch: Any, resource_type: str) -> set[str] | None:
    """The top-level elements a patch writes or moves (`""` for the whole resource): a JSON
    Patch (RFC 6902) list, or a FHIRPath Patch `Parameters`; None for neither."""
    touched: set[str] = set()
    if isinstance(patch, list):
        for op in patch:
            if not isinstance(op, dict) or not isinstance(op.get("path"), str):
                return None
            for key in ("path", "from"):
                pointer = op.get(key)
                if isinstance(pointer, str):
                    first = pointer.split("/")[1] if pointer.startswith("/") else ""
                    touched.add(first.replace("~1", "/").replace("~0", "~"))
        return touched
    if not isinstance(patch, dict) or patch.get("resourceType") != "Parameters":
        return None
    for param in patch.get("parameter") or []:
        if not isinstance(param, dict) or param.get("name") != "operation":
            return None
        parts = {
            p.get("name"): next((v for k, v in p.items() if k.startswith("value")), None)
            for p in param.get("part") or []
            if isinstance(p, dict)
        }
        path = parts.get("path")
        if not isinstance(path, str):
            return None
        steps = [step.split("(")[0].strip() for step in path.split(".")]
        if steps and steps[0] == resource_type:
            steps = steps[1:]
        if steps:
            touched.add(steps[0])
        elif isinstance(parts.get("name"), str):
            touched.add(parts["name"])  # add/insert of an element named at the root
        else:
            touched.add("")
    return touched


class CompartmentStage(Stage):
    """C08. With `current` (the stored resources, read from HAPI), updates, patches and deletes
    by id are checked against the version they change; without it, patches and deletes of types
    other than Patient are refused and updates are checked on their body only."""

    name = "compartment"
    reads = frozenset({"token", "fhir", "upstream_params", "body", "if_none_exist", "stored"})
    writes = frozenset({"upstream_params", "if_none_exist", "resource_checks", "stored"})

    def __init__(self, current: CurrentResources | None = None) -> None:
        self.current = current

    def checks(self) -> list[tuple[str | None, Check]]:
        return [("C08", self.confine)]

    async def confine(self, ctx: RequestContext) -> None:
        if ctx.token is None or ctx.fhir is None or not ctx.token.patient:
            return  # no patient in context: backend services, practitioners
        confinement = _Confinement(ctx, ctx.fhir, ctx.token.patient, self.current is not None)
        confinement.run()
        if confinement.stored is not None and self.current is not None:
            stored = await stored_version(ctx, self.current, *confinement.stored)
            confinement.check_stored(stored)

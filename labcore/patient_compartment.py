"""The FHIR R4 (4.0.1) Patient compartment as data, and membership checks (control C08).

For each resource type the CompartmentDefinition lists the search parameters that put a
resource in a patient's compartment; next to each parameter are the JSON element paths its R4
search expression reads (`Condition.patient` is `Condition.subject.where(resolve() is Patient)`,
so the path is `subject`), so the gateway can check that a returned resource belongs to the
patient in context without asking the server. Types the definition lists without parameters
are never in the compartment (Organization, Practitioner, Medication, Location, Task, ...);
`membership()` tells those apart from names R4 does not define, which callers should refuse.

The Patient resource is in its own compartment by id (`_id`), and a Patient linked to it
through `link.other` is in it too.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Final

__all__ = [
    "NOT_IN_COMPARTMENT",
    "PATIENT_COMPARTMENT",
    "Membership",
    "compartment_patient_ids",
    "in_compartment_types",
    "membership",
    "not_in_compartment_types",
    "patient_element_paths",
    "patient_id_from_reference",
    "patient_search_params",
    "referenced_patient_ids",
    "references_patient",
]

# resource type -> {search parameter -> element paths (dotted, relative to the resource)}
_R4_PATIENT: Final[dict[str, dict[str, tuple[str, ...]]]] = {
    "Account": {"subject": ("subject",)},
    "AdverseEvent": {"subject": ("subject",)},
    "AllergyIntolerance": {
        "patient": ("patient",),
        "recorder": ("recorder",),
        "asserter": ("asserter",),
    },
    "Appointment": {"actor": ("participant.actor",)},
    "AppointmentResponse": {"actor": ("actor",)},
    "AuditEvent": {"patient": ("agent.who", "entity.what")},
    "Basic": {"patient": ("subject",), "author": ("author",)},
    "BodyStructure": {"patient": ("patient",)},
    "CarePlan": {"patient": ("subject",), "performer": ("activity.detail.performer",)},
    "CareTeam": {"patient": ("subject",), "participant": ("participant.member",)},
    "ChargeItem": {"subject": ("subject",)},
    "Claim": {"patient": ("patient",), "payee": ("payee.party",)},
    "ClaimResponse": {"patient": ("patient",)},
    "ClinicalImpression": {"subject": ("subject",)},
    "Communication": {
        "subject": ("subject",),
        "sender": ("sender",),
        "recipient": ("recipient",),
    },
    "CommunicationRequest": {
        "subject": ("subject",),
        "sender": ("sender",),
        "recipient": ("recipient",),
        "requester": ("requester",),
    },
    "Composition": {
        "subject": ("subject",),
        "author": ("author",),
        "attester": ("attester.party",),
    },
    "Condition": {"patient": ("subject",), "asserter": ("asserter",)},
    "Consent": {"patient": ("patient",)},
    "Coverage": {
        "policy-holder": ("policyHolder",),
        "subscriber": ("subscriber",),
        "beneficiary": ("beneficiary",),
        "payor": ("payor",),
    },
    "CoverageEligibilityRequest": {"patient": ("patient",)},
    "CoverageEligibilityResponse": {"patient": ("patient",)},
    "DetectedIssue": {"patient": ("patient",)},
    "DeviceRequest": {"subject": ("subject",), "performer": ("performer",)},
    "DeviceUseStatement": {"subject": ("subject",)},
    "DiagnosticReport": {"subject": ("subject",)},
    "DocumentManifest": {
        "subject": ("subject",),
        "author": ("author",),
        "recipient": ("recipient",),
    },
    "DocumentReference": {"subject": ("subject",), "author": ("author",)},
    "Encounter": {"patient": ("subject",)},
    "EnrollmentRequest": {"subject": ("candidate",)},
    "EpisodeOfCare": {"patient": ("patient",)},
    "ExplanationOfBenefit": {"patient": ("patient",), "payee": ("payee.party",)},
    "FamilyMemberHistory": {"patient": ("patient",)},
    "Flag": {"patient": ("subject",)},
    "Goal": {"patient": ("subject",)},
    "Group": {"member": ("member.entity",)},
    "ImagingStudy": {"patient": ("subject",)},
    "Immunization": {"patient": ("patient",)},
    "ImmunizationEvaluation": {"patient": ("patient",)},
    "ImmunizationRecommendation": {"patient": ("patient",)},
    "Invoice": {"subject": ("subject",), "patient": ("subject",), "recipient": ("recipient",)},
    "List": {"subject": ("subject",), "source": ("source",)},
    "MeasureReport": {"patient": ("subject",)},
    "Media": {"subject": ("subject",)},
    "MedicationAdministration": {
        "patient": ("subject",),
        "performer": ("performer.actor",),
        "subject": ("subject",),
    },
    "MedicationDispense": {
        "subject": ("subject",),
        "patient": ("subject",),
        "receiver": ("receiver",),
    },
    "MedicationRequest": {"subject": ("subject",)},
    "MedicationStatement": {"subject": ("subject",)},
    "MolecularSequence": {"patient": ("patient",)},
    "NutritionOrder": {"patient": ("patient",)},
    "Observation": {"subject": ("subject",), "performer": ("performer",)},
    "Patient": {"link": ("link.other",)},
    "Person": {"patient": ("link.target",)},
    "Procedure": {"patient": ("subject",), "performer": ("performer.actor",)},
    "Provenance": {"patient": ("target",)},
    "QuestionnaireResponse": {"subject": ("subject",), "author": ("author",)},
    "RelatedPerson": {"patient": ("patient",)},
    "RequestGroup": {"subject": ("subject",), "participant": ("action.participant",)},
    "ResearchSubject": {"individual": ("individual",)},
    "RiskAssessment": {"subject": ("subject",)},
    "Schedule": {"actor": ("actor",)},
    "ServiceRequest": {"subject": ("subject",), "performer": ("performer",)},
    "Specimen": {"subject": ("subject",)},
    "SupplyDelivery": {"patient": ("patient",)},
    "SupplyRequest": {"subject": ("deliverTo",)},
    "VisionPrescription": {"patient": ("patient",)},
}

PATIENT_COMPARTMENT: Final[Mapping[str, Mapping[str, tuple[str, ...]]]] = MappingProxyType(
    {rtype: MappingProxyType(links) for rtype, links in _R4_PATIENT.items()}
)

# Listed by the R4 definition without parameters: never in a Patient compartment. `Parameters`
# is not listed there (it is never stored) and is added here for completeness.
NOT_IN_COMPARTMENT: Final[frozenset[str]] = frozenset(
    """
    ActivityDefinition Binary BiologicallyDerivedProduct Bundle CapabilityStatement CatalogEntry
    ChargeItemDefinition CodeSystem CompartmentDefinition ConceptMap Contract Device
    DeviceDefinition DeviceMetric EffectEvidenceSynthesis Endpoint EnrollmentResponse
    EventDefinition Evidence EvidenceVariable ExampleScenario GraphDefinition GuidanceResponse
    HealthcareService ImplementationGuide InsurancePlan Library Linkage Location Measure
    Medication MedicationKnowledge MedicinalProduct MedicinalProductAuthorization
    MedicinalProductContraindication MedicinalProductIndication MedicinalProductIngredient
    MedicinalProductInteraction MedicinalProductManufactured MedicinalProductPackaged
    MedicinalProductPharmaceutical MedicinalProductUndesirableEffect MessageDefinition
    MessageHeader NamingSystem ObservationDefinition OperationDefinition OperationOutcome
    Organization OrganizationAffiliation Parameters PaymentNotice PaymentReconciliation
    PlanDefinition Practitioner PractitionerRole Questionnaire ResearchDefinition
    ResearchElementDefinition ResearchStudy RiskEvidenceSynthesis SearchParameter Slot
    SpecimenDefinition StructureDefinition StructureMap Subscription Substance
    SubstanceNucleicAcid SubstancePolymer SubstanceProtein SubstanceReferenceInformation
    SubstanceSourceMaterial SubstanceSpecification Task TerminologyCapabilities TestReport
    TestScript ValueSet VerificationResult
    """.split()  # noqa: SIM905 (a word list reads better than 82 quoted lines)
)

_IN_TYPES: Final[frozenset[str]] = frozenset(_R4_PATIENT)
_ID: Final = re.compile(r"[A-Za-z0-9\-.]{1,64}")
# [<scheme>://<authority and path>/]Patient/<id>[/_history/<vid>]
_PATIENT_REFERENCE: Final = re.compile(
    r"(?:(?P<base>[A-Za-z][A-Za-z0-9+.\-]*://[^/?#]+(?:/[^?#]*?)?)/)?"
    r"Patient/(?P<id>[A-Za-z0-9\-.]{1,64})(?:/_history/[A-Za-z0-9\-.]{1,64})?"
)
# resource type -> every element path, each pre-split, deduplicated, in table order
_PATHS: Final[dict[str, tuple[tuple[str, ...], ...]]] = {
    rtype: tuple(
        tuple(path.split("."))
        for path in dict.fromkeys(p for paths in links.values() for p in paths)
    )
    for rtype, links in _R4_PATIENT.items()
}


class Membership(StrEnum):
    IN = "in"  # may be in a patient's compartment (through the listed parameters)
    NEVER = "never"  # an R4 type the definition excludes
    UNKNOWN = "unknown"  # not an R4 resource type: refuse


def membership(resource_type: str) -> Membership:
    if resource_type in _IN_TYPES:
        return Membership.IN
    if resource_type in NOT_IN_COMPARTMENT:
        return Membership.NEVER
    return Membership.UNKNOWN


def in_compartment_types() -> frozenset[str]:
    """The resource types that can be in a Patient compartment (66 in R4)."""
    return _IN_TYPES


def not_in_compartment_types() -> frozenset[str]:
    return NOT_IN_COMPARTMENT


def patient_search_params(resource_type: str) -> tuple[str, ...]:
    """Search parameters linking `resource_type` to the patient; `()` if it is never a member.

    For `Patient` this is `("link",)`: the Patient itself is matched by `_id`.
    """
    links = _R4_PATIENT.get(resource_type)
    return tuple(links) if links else ()


def patient_element_paths(resource_type: str) -> tuple[str, ...]:
    """Dotted JSON element paths holding patient references, e.g. `participant.actor`."""
    return tuple(".".join(path) for path in _PATHS.get(resource_type, ()))


def patient_id_from_reference(
    reference: str, fhir_bases: Collection[str] | None = None
) -> str | None:
    """The patient id a reference string points at, or None.

    Accepts `Patient/123`, `Patient/123/_history/2` and absolute `<base>/Patient/123[/_history/2]`
    (with `fhir_bases` given, only those bases). Contained (`#x`), `urn:` and conditional
    (`Patient?identifier=...`) references name no patient id here.
    """
    return _patient_id(reference, _bases(fhir_bases))


def _bases(fhir_bases: Collection[str] | None) -> frozenset[str] | None:
    return None if fhir_bases is None else frozenset(b.rstrip("/") for b in fhir_bases)


def _patient_id(reference: object, bases: frozenset[str] | None) -> str | None:
    if not isinstance(reference, str):
        return None
    if bases is None:
        return _any_base_patient_id(reference)
    match = _PATIENT_REFERENCE.fullmatch(reference)
    if match is None:
        return None
    base = match["base"]
    if base is not None and base not in bases:
        return None
    return match["id"]


_KNOWN_REFERENCES: dict[str, str | None] = {}
_MAX_KNOWN_REFERENCES: Final = 4096
_MAX_KNOWN_LENGTH: Final = 256


def _any_base_patient_id(reference: str) -> str | None:
    """`_patient_id` with any base accepted, remembered per reference string: responses name the
    same few patients over and over (bounded: the memo starts afresh when full)."""
    try:
        return _KNOWN_REFERENCES[reference]
    except KeyError:
        pass
    match = _PATIENT_REFERENCE.fullmatch(reference)
    pid = None if match is None else match["id"]
    if len(reference) <= _MAX_KNOWN_LENGTH:
        if len(_KNOWN_REFERENCES) >= _MAX_KNOWN_REFERENCES:
            _KNOWN_REFERENCES.clear()
        _KNOWN_REFERENCES[reference] = pid
    return pid


def _reference_strings(resource: Mapping[str, Any], path: tuple[str, ...]) -> list[str]:
    """The `reference` strings at `path`, walking dicts and lists (FHIR JSON has no nested lists,
    so a list inside a list is not walked)."""
    if len(path) == 1:  # the common case (subject, patient, performer): no intermediate lists
        child = resource.get(path[0])
        if isinstance(child, dict):
            ref = child.get("reference")
            return [ref] if isinstance(ref, str) else []
        if isinstance(child, list):
            return [
                ref
                for item in child
                if isinstance(item, dict) and isinstance(ref := item.get("reference"), str)
            ]
        return []
    nodes: list[Mapping[str, Any]] = [resource]
    for part in path:
        found: list[Mapping[str, Any]] = []
        for node in nodes:
            child = node.get(part)
            if isinstance(child, dict):
                found.append(child)
            elif isinstance(child, list):
                found.extend(item for item in child if isinstance(item, dict))
        if not found:
            return []
        nodes = found
    return [ref for node in nodes if isinstance(ref := node.get("reference"), str)]


def compartment_patient_ids(
    resource: Mapping[str, Any], fhir_bases: Collection[str] | None = None
) -> frozenset[str]:
    """Ids of every patient whose compartment `resource` is in (empty if none or unknown)."""
    if type(resource) is not dict and not isinstance(resource, Mapping):  # parsed JSON: a dict
        return frozenset()
    rtype = resource.get("resourceType")
    paths = _PATHS.get(rtype) if isinstance(rtype, str) else None
    if not paths:
        return frozenset()
    bases = None if fhir_bases is None else _bases(fhir_bases)
    ids: set[str] = set()
    own_id = resource.get("id")
    if rtype == "Patient" and isinstance(own_id, str) and _ID.fullmatch(own_id):
        ids.add(own_id)
    for path in paths:
        for ref in _reference_strings(resource, path):
            pid = _any_base_patient_id(ref) if bases is None else _patient_id(ref, bases)
            if pid is not None:
                ids.add(pid)
    return frozenset(ids)


def references_patient(
    resource: Mapping[str, Any], patient_id: str, fhir_bases: Collection[str] | None = None
) -> bool:
    """Is `resource` in the compartment of Patient `patient_id`? Unknown shapes give False."""
    if not isinstance(resource, Mapping) or not patient_id:
        return False
    rtype = resource.get("resourceType")
    paths = _PATHS.get(rtype) if isinstance(rtype, str) else None
    if not paths:
        return False
    if rtype == "Patient" and resource.get("id") == patient_id and _ID.fullmatch(patient_id):
        return True
    bases = _bases(fhir_bases)
    for path in paths:
        for ref in _reference_strings(resource, path):
            if _patient_id(ref, bases) == patient_id:
                return True
    return False


_ESCAPE: Final = re.compile(rb"\\[u/]")


class AnswerText:
    """The text of an answer, asked once per patient whether it names any other patient: when
    every `Patient/` in it is followed by that patient's id and the end of a reference, no
    resource of the answer can point at another patient, and none needs walking. Counting
    occurrences is a few passes over the bytes; a text with escapes (`\\u`, `\\/`) that could
    spell a reference the count would not see is never vouched for."""

    __slots__ = ("_escaped", "_only", "raw")

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self._escaped = _ESCAPE.search(raw) is not None
        self._only: dict[str, bool] = {}

    def names_only(self, patient: str) -> bool:
        found = self._only.get(patient)
        if found is None:
            found = self._only[patient] = self._count(patient)
        return found

    def _count(self, patient: str) -> bool:
        if self._escaped:
            return False
        raw = self.raw
        total = raw.count(b"Patient/")
        if not total:
            return True
        mine = b"Patient/" + patient.encode("utf-8", "replace")
        ended = raw.count(mine + b'"')
        if ended == total:  # every `Patient/` is this one's (the usual answer): one pass less
            return True
        return total == ended + raw.count(mine + b"/")


def referenced_patient_ids(resource: Mapping[str, Any]) -> frozenset[str]:
    """Ids of every patient that any reference anywhere in `resource` points at (not only the
    compartment's elements: for resources outside the compartment, which must name no other
    patient)."""
    found: set[str] = set()
    stack: list[Any] = [resource]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            ref = node.get("reference")
            if isinstance(ref, str):
                pid = _patient_id(ref, None)
                if pid is not None:
                    found.add(pid)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return frozenset(found)

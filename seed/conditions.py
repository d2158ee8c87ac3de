"""Problems, treatments and allergies: Condition, MedicationRequest, AllergyIntolerance."""

from __future__ import annotations

import bisect
import random
from dataclasses import dataclass

from seed.codes import (
    AGE_BANDS,
    ALLERGIES,
    ALLERGY_CLINICAL,
    ALLERGY_VERIFICATION,
    ANAPHYLAXIS,
    COMMON_CONDITIONS,
    CONDITION_BY_KEY,
    CONDITION_CATEGORY,
    CONDITION_CLINICAL,
    CONDITION_VERIFICATION,
    DOSAGE,
    MEDREQ_CATEGORY,
    SECURITY_LABELS,
    SENSITIVE_CHOICES,
    Code,
    ConditionDef,
)
from seed.demographics import Person
from seed.fhir import Resource, concept, concepts, iso_date, meta, ref
from seed.physiology import Baseline

_DAYS_PER_YEAR = 365.25


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """A condition of one patient, as other domains (visits, notes) need to see it."""

    defn: ConditionDef
    id: str
    onset_ord: int
    medication: Code | None
    security: tuple[Code, ...]
    label: str  # the SNOMED display without its semantic tag: "Asthma"

    @property
    def sensitive(self) -> bool:
        return bool(self.security)


def draw_diagnoses(
    person: Person,
    baseline: Baseline,
    rng: random.Random,
    sensitive_share: float,
    reference_ord: int,
) -> list[Diagnosis]:
    """Common conditions by age-band prevalence, obesity from BMI, then maybe one sensitive one."""
    age = person.age
    band = bisect.bisect_right(AGE_BANDS, age) - 1
    obese = baseline.obese if age >= 18 else baseline.bmi_factor > 1.2
    chosen: list[tuple[ConditionDef, float]] = []  # (definition, onset age in years)
    for defn in COMMON_CONDITIONS:
        p = defn.prevalence[band]
        if obese and defn.key in ("diabetes", "hypertension"):
            p *= 1.5
        if rng.random() < p and age >= defn.min_onset_age:
            chosen.append((defn, rng.uniform(defn.min_onset_age, age + 0.999)))
    if obese and rng.random() < 0.75:
        obesity = CONDITION_BY_KEY["obesity"]
        chosen.append((obesity, rng.uniform(max(2, age - 15), age + 0.999)))
    if age >= 13 and rng.random() < sensitive_share:
        options = [(key, w) for key, w, min_age in SENSITIVE_CHOICES if age >= min_age]
        key = rng.choices([k for k, _ in options], weights=[w for _, w in options])[0]
        defn = CONDITION_BY_KEY[key]
        chosen.append((defn, rng.uniform(max(defn.min_onset_age, age - 8), age + 0.999)))

    out = []
    for n, (defn, onset_age) in enumerate(chosen, start=1):
        onset = person.birth_ord + int(onset_age * _DAYS_PER_YEAR)
        onset = max(person.birth_ord + 1, min(onset, reference_ord - 1))
        med = None
        if defn.medications and rng.random() < defn.treated_share:
            med = defn.medications[rng.randrange(len(defn.medications))]
        security = SECURITY_LABELS[defn.sensitivity] if defn.sensitivity else ()
        label = defn.snomed.display.rsplit(" (", 1)[0]
        out.append(Diagnosis(defn, f"cond-{person.key}-{n}", onset, med, security, label))
    return out


def condition_resource(person: Person, dx: Diagnosis) -> Resource:
    d = dx.defn
    onset = iso_date(dx.onset_ord)
    return {
        "resourceType": "Condition",
        "id": dx.id,
        "meta": meta(person.tenant.id, dx.security),
        "clinicalStatus": {
            "coding": [{"system": CONDITION_CLINICAL, "code": "active", "display": "Active"}]
        },
        "verificationStatus": {
            "coding": [
                {"system": CONDITION_VERIFICATION, "code": "confirmed", "display": "Confirmed"}
            ]
        },
        "category": [
            {
                "coding": [
                    {
                        "system": CONDITION_CATEGORY,
                        "code": "problem-list-item",
                        "display": "Problem List Item",
                    }
                ]
            }
        ],
        "code": concepts(d.snomed, d.icd10, text=dx.label),
        "subject": ref("Patient", person.id),
        "onsetDateTime": onset,
        "recordedDate": onset,
        "recorder": ref("Practitioner", person.gp),
    }


def medication_request(
    person: Person, dx: Diagnosis, number: int, rng: random.Random, reference_ord: int
) -> Resource:
    assert dx.medication is not None
    med = dx.medication
    text, as_needed = DOSAGE[med.code]
    # An active order is the latest renewal: within the last ~13 months, never before diagnosis.
    latest_renewal = reference_ord - rng.randint(30, 395)
    authored = min(max(dx.onset_ord + rng.randint(0, 60), latest_renewal), reference_ord - 1)
    dosage: dict[str, object] = {"sequence": 1, "text": text}
    if as_needed:
        dosage["asNeededBoolean"] = True
    else:
        dosage["timing"] = {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}}
    return {
        "resourceType": "MedicationRequest",
        "id": f"med-{person.key}-{number}",
        "meta": meta(person.tenant.id, dx.security),
        "status": "active",
        "intent": "order",
        "category": [
            {"coding": [{"system": MEDREQ_CATEGORY, "code": "outpatient", "display": "Outpatient"}]}
        ],
        "medicationCodeableConcept": concept(med),
        "subject": ref("Patient", person.id),
        "authoredOn": iso_date(authored),
        "requester": ref("Practitioner", person.gp),
        "reasonReference": [ref("Condition", dx.id)],
        "dosageInstruction": [dosage],
        "dispenseRequest": {"numberOfRepeatsAllowed": 3},
    }


def allergy_resources(person: Person, rng: random.Random, reference_ord: int) -> list[Resource]:
    """About a quarter of patients have one or two recorded allergies."""
    if rng.random() >= 0.25 or person.age < 1:
        return []
    count = 1 if rng.random() < 0.8 else 2
    picks: list[int] = []
    weights = [a.weight for a in ALLERGIES]
    while len(picks) < count:
        i = rng.choices(range(len(ALLERGIES)), weights=weights)[0]
        if i not in picks:
            picks.append(i)
    out = []
    for n, i in enumerate(picks, start=1):
        a = ALLERGIES[i]
        reaction = a.reactions[rng.randrange(len(a.reactions))]
        severe = reaction == ANAPHYLAXIS
        severity = "severe" if severe else ("mild", "moderate")[rng.random() < 0.4]
        onset = person.birth_ord + int(rng.uniform(1, person.age + 0.999) * _DAYS_PER_YEAR)
        onset = min(onset, reference_ord - 1)
        out.append(
            {
                "resourceType": "AllergyIntolerance",
                "id": f"alg-{person.key}-{n}",
                "meta": meta(person.tenant.id),
                "clinicalStatus": {
                    "coding": [{"system": ALLERGY_CLINICAL, "code": "active", "display": "Active"}]
                },
                "verificationStatus": {
                    "coding": [
                        {
                            "system": ALLERGY_VERIFICATION,
                            "code": "confirmed",
                            "display": "Confirmed",
                        }
                    ]
                },
                "type": "allergy",
                "category": [a.category],
                "criticality": "high" if severe else "low",
                "code": concept(a.substance),
                "patient": ref("Patient", person.id),
                "onsetDateTime": iso_date(onset),
                "recordedDate": iso_date(onset),
                "recorder": ref("Practitioner", person.gp),
                "reaction": [{"manifestation": [concept(reaction)], "severity": severity}],
            }
        )
    return out

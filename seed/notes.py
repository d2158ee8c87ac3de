"""Clinical notes as DocumentReference with a base64 text/plain attachment.

Notes carry free-text PHI (name, age, problems), which is what an over-scoped AI client would
read. A note is labelled like the visit it documents: behavioural-health, HIV and substance-use
follow-ups are labelled; other notes list only non-sensitive problems, as a segmented record would.
"""

from __future__ import annotations

import base64
import random

from seed.codes import (
    CLINICAL_NOTE,
    DISCHARGE_SUMMARY,
    MH_PROGRESS_NOTE,
    PROGRESS_NOTE,
)
from seed.conditions import Diagnosis
from seed.demographics import Person, completed_years
from seed.fhir import Resource, concept, iso_datetime, meta, ref
from seed.physiology import Vitals
from seed.visits import EMERGENCY_VISIT, FOLLOWUP, INPATIENT_STAY, WELLNESS, Visit

_PLANS = (
    "Continue current management. Return in 3 months or sooner if symptoms worsen.",
    "Reviewed medications and adherence. Lifestyle counselling given. Follow up as scheduled.",
    "Discussed diet and exercise. Repeat labs before next visit.",
    "Stable. No changes to treatment today. Patient verbalised understanding of the plan.",
)


def note_text(
    person: Person, visit: Visit, vitals: Vitals, problems: list[Diagnosis], rng: random.Random
) -> str:
    """The note body; it mentions only the problems the caller passes."""
    age = completed_years(person.birth_ord, visit.day)
    who = f"{person.given} {person.family}, {age}-year-old {person.sex}"
    vit = (
        f"BP {vitals.sbp}/{vitals.dbp} mm[Hg], HR {vitals.hr} /min, "
        f"T {vitals.temp} Cel, SpO2 {vitals.spo2} %, weight {vitals.weight} kg"
    )
    listed = "; ".join(sorted({p.label for p in problems})) or "none"
    plan = _PLANS[rng.randrange(len(_PLANS))]
    dx = visit.diagnosis
    if visit.kind == WELLNESS:
        body = (
            f"Preventive visit for {who}.\nVitals: {vit}, BMI {vitals.bmi} kg/m2.\n"
            f"Active problems: {listed}.\nPlan: age-appropriate screening. {plan}"
        )
    elif visit.kind == FOLLOWUP and dx is not None:
        med = f" Current treatment: {dx.medication.display}." if dx.medication else ""
        body = (
            f"Follow-up of {dx.label} for {who}.{med}\n"
            f"Assessment: {dx.label}, {rng.choice(('improving', 'stable', 'not at goal'))}.\n"
            f"Plan: {plan}"
        )
    elif visit.kind == EMERGENCY_VISIT:
        body = (
            f"Emergency department visit of {who} for {visit.complaint or 'evaluation'}.\n"
            f"Triage vitals: {vit}.\nKnown problems: {listed}.\n"
            "Disposition: treated and discharged home with return precautions."
        )
    else:
        body = (
            f"Discharge summary for {who}.\nAdmitted for observation and treatment; "
            f"course uncomplicated.\nKnown problems: {listed}.\n"
            "Discharged home in stable condition. Follow up with primary care in 1 week."
        )
    return body


def document_reference(
    person: Person, visit: Visit, enc_id: str, doc_id: str, text: str
) -> Resource:
    dx = visit.diagnosis
    if visit.kind == INPATIENT_STAY:
        doc_type, title = DISCHARGE_SUMMARY, "Discharge summary"
    elif dx is not None and dx.defn.sensitivity == "BH":
        doc_type, title = MH_PROGRESS_NOTE, "Mental health progress note"
    else:
        doc_type, title = PROGRESS_NOTE, "Progress note"
    end = iso_datetime(visit.end_day, visit.end_minute)
    return {
        "resourceType": "DocumentReference",
        "id": doc_id,
        "meta": meta(person.tenant.id, visit.security),
        "status": "current",
        "docStatus": "final",
        "type": concept(doc_type),
        "category": [concept(CLINICAL_NOTE)],
        "subject": ref("Patient", person.id),
        "date": end,
        "author": [ref("Practitioner", visit.practitioner)],
        "custodian": ref("Organization", person.tenant.organization_id),
        "content": [
            {
                "attachment": {
                    "contentType": "text/plain",
                    "language": "en-US",
                    "data": base64.b64encode(text.encode()).decode("ascii"),
                    "title": title,
                    "creation": end,
                }
            }
        ],
        "context": {
            "encounter": [ref("Encounter", enc_id)],
            "period": {"start": iso_datetime(visit.day, visit.minute), "end": end},
        },
    }

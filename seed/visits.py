"""When a patient was seen (and will be): the visit plan, Encounter and Appointment resources.

A plan is drawn first (dates, kinds, practitioners, reasons) from its own random stream, then each
visit is rendered to resources; so changing how a visit is rendered never moves the visits.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from seed.codes import (
    AMBULATORY,
    CHECKUP,
    ED_COMPLAINTS,
    EMERGENCY,
    ER_ADMISSION,
    FOLLOW_UP,
    FOLLOWUP_APPT,
    GENERAL_EXAM,
    GENERAL_PRACTICE,
    HOSPITAL_ADMISSION,
    INPATIENT,
    PRIMARY_PERFORMER,
    PSYCHIATRY,
    WELL_CHILD,
    Code,
)
from seed.conditions import Diagnosis
from seed.demographics import Person
from seed.fhir import Resource, concept, iso_datetime, meta, ref

WELLNESS = "wellness"
FOLLOWUP = "followup"
EMERGENCY_VISIT = "emergency"
INPATIENT_STAY = "inpatient"
_YEAR = 365.25


@dataclass(frozen=True, slots=True)
class Visit:
    kind: str
    day: int  # ordinal of the start day
    minute: int  # start, minutes after midnight
    end_day: int
    end_minute: int
    practitioner: str
    diagnosis: Diagnosis | None = None  # the reason of a follow-up
    complaint: str | None = None  # the reason of an emergency visit

    @property
    def security(self) -> tuple[Code, ...]:
        return self.diagnosis.security if self.diagnosis else ()

    @property
    def scheduled(self) -> bool:
        return self.kind in (WELLNESS, FOLLOWUP)


@dataclass(frozen=True, slots=True)
class Booking:
    """An Appointment without an Encounter: future (booked), or past cancelled / no-show."""

    status: str
    day: int
    minute: int
    kind: str
    practitioner: str
    diagnosis: Diagnosis | None = None


def _weekday_on_or_before(day: int) -> int:
    weekday = (day - 1) % 7  # date.fromordinal(1) is a Monday
    return day - (weekday - 4) if weekday > 4 else day


def _clinic_minute(rng: random.Random) -> int:
    return 8 * 60 + 15 * int(rng.random() * 34)  # 08:00 … 16:15


def _count(rng: random.Random, rate_per_year: float, years: float) -> int:
    """An expected ``rate * years`` events, rounded stochastically."""
    expected = rate_per_year * years
    return int(expected) + (1 if rng.random() < expected - int(expected) else 0)


def plan_visits(
    person: Person,
    diagnoses: list[Diagnosis],
    rng: random.Random,
    window_start: int,
    reference: int,
) -> list[Visit]:
    start = max(window_start, person.birth_ord + 7)
    last = reference - 1
    if start > last:
        return []
    pracs = person.tenant.practitioner_ids
    age = person.age
    visits: list[Visit] = []

    def clinic_day(low: int, high: int) -> int | None:
        day = _weekday_on_or_before(rng.randint(low, high))
        return day if day >= low else None

    def clinician(specialist: bool = False) -> str:
        if specialist and len(pracs) > 1:  # a different clinician than the GP, stable per patient
            shift = 1 + person.index % (len(pracs) - 1)
            return pracs[(pracs.index(person.gp) + shift) % len(pracs)]
        return person.gp if rng.random() < 0.9 else pracs[rng.randrange(len(pracs))]

    def scheduled(kind: str, day: int, minutes: int, dx: Diagnosis | None = None) -> None:
        m = _clinic_minute(rng)
        prac = clinician(dx is not None and dx.sensitive)
        visits.append(Visit(kind, day, m, day, m + minutes, prac, diagnosis=dx))

    # One preventive visit a year (most children and elderly, fewer adults).
    p_well = 0.9 if age < 18 else 0.8 if age >= 65 else 0.6
    year_start = start
    while year_start <= last:
        year_end = min(last, year_start + 364)
        if rng.random() < p_well and (day := clinic_day(year_start, year_end)) is not None:
            scheduled(WELLNESS, day, 30)
        year_start += 365

    # Emergency visits and admissions (drawn before follow-ups, which depend on diagnoses).
    years = (last - start) / _YEAR
    ed_rate = 0.25 if age < 5 else 0.22 if age >= 65 else 0.12
    for _ in range(_count(rng, ed_rate, years)):
        day, minute = rng.randint(start, last), rng.randrange(1440)
        end = minute + rng.randint(120, 360)
        complaint = ED_COMPLAINTS[rng.randrange(len(ED_COMPLAINTS))]
        visits.append(
            Visit(
                EMERGENCY_VISIT,
                day,
                minute,
                day + end // 1440,
                end % 1440,
                clinician(),
                complaint=complaint,
            )
        )
    for _ in range(_count(rng, 0.06 if age >= 65 else 0.015, years)):
        stay = rng.randint(2, 6)
        if last - stay < start:
            continue
        day, minute = rng.randint(start, last - stay), rng.randrange(1440)
        visits.append(
            Visit(
                INPATIENT_STAY,
                day,
                minute,
                day + stay,
                10 * 60 + rng.randrange(360),
                pracs[rng.randrange(len(pracs))],
            )
        )

    # Follow-ups of each chronic condition since its onset.
    for dx in diagnoses:
        rate = dx.defn.followups_per_year
        first = max(start, dx.onset_ord + 14)
        if rate <= 0 or first > last:
            continue
        for _ in range(_count(rng, rate, (last - first) / _YEAR)):
            if (day := clinic_day(first, last)) is not None:
                scheduled(FOLLOWUP, day, 20, dx)

    visits.sort(key=lambda v: (v.day, v.minute, v.kind))
    return visits


def plan_bookings(
    person: Person,
    visits: list[Visit],
    diagnoses: list[Diagnosis],
    rng: random.Random,
    reference: int,
) -> list[Booking]:
    """Missed appointments before some past visits, and 0–2 booked in the next 120 days."""
    out: list[Booking] = []
    for v in visits:
        if not v.scheduled:
            continue
        r = rng.random()
        if r < 0.13:
            status = "cancelled" if r < 0.08 else "noshow"
            day = _weekday_on_or_before(v.day - rng.randint(3, 21))
            if day > person.birth_ord:
                out.append(
                    Booking(status, day, _clinic_minute(rng), v.kind, v.practitioner, v.diagnosis)
                )
    chronic = [d for d in diagnoses if d.defn.followups_per_year > 0]
    r = rng.random()
    for _ in range(2 if r < 0.15 else 1 if r < 0.6 else 0):
        day = _weekday_on_or_before(reference + rng.randint(3, 120))
        dx = chronic[rng.randrange(len(chronic))] if chronic and rng.random() < 0.6 else None
        out.append(
            Booking("booked", day, _clinic_minute(rng), FOLLOWUP if dx else WELLNESS, person.gp, dx)
        )
    out.sort(key=lambda b: (b.day, b.minute))
    return out


_TYPES = {
    WELLNESS: GENERAL_EXAM,
    FOLLOWUP: FOLLOW_UP,
    EMERGENCY_VISIT: ER_ADMISSION,
    INPATIENT_STAY: HOSPITAL_ADMISSION,
}
_CLASSES = {
    WELLNESS: AMBULATORY,
    FOLLOWUP: AMBULATORY,
    EMERGENCY_VISIT: EMERGENCY,
    INPATIENT_STAY: INPATIENT,
}


def encounter_resource(
    person: Person, visit: Visit, enc_id: str, appointment_id: str | None
) -> Resource:
    tenant = person.tenant
    enc_type = WELL_CHILD if visit.kind == WELLNESS and person.age < 18 else _TYPES[visit.kind]
    resource: Resource = {
        "resourceType": "Encounter",
        "id": enc_id,
        "meta": meta(tenant.id, visit.security),
        "status": "finished",
        "class": _CLASSES[visit.kind].coding,
        "type": [concept(enc_type)],
        "subject": ref("Patient", person.id),
        "participant": [
            {
                "type": [concept(PRIMARY_PERFORMER)],
                "individual": ref("Practitioner", visit.practitioner),
            }
        ],
        "period": {
            "start": iso_datetime(visit.day, visit.minute),
            "end": iso_datetime(visit.end_day, visit.end_minute),
        },
        "serviceProvider": ref("Organization", tenant.organization_id),
    }
    if visit.diagnosis is not None:
        resource["reasonReference"] = [ref("Condition", visit.diagnosis.id)]
    elif visit.complaint is not None:
        resource["reasonCode"] = [{"text": visit.complaint}]
    if appointment_id is not None:
        resource["appointment"] = [ref("Appointment", appointment_id)]
    return resource


def appointment_resource(
    person: Person,
    appt_id: str,
    status: str,
    kind: str,
    day: int,
    minute: int,
    minutes: int,
    practitioner: str,
    diagnosis: Diagnosis | None,
) -> Resource:
    sensitive = diagnosis is not None and diagnosis.sensitive
    resource: Resource = {
        "resourceType": "Appointment",
        "id": appt_id,
        "meta": meta(person.tenant.id, diagnosis.security if diagnosis else ()),
        "status": status,
        "serviceType": [concept(GENERAL_PRACTICE)]
        if not sensitive
        else [{"text": "Behavioral health / specialty follow-up"}],
        "appointmentType": concept(FOLLOWUP_APPT if kind == FOLLOWUP else CHECKUP),
        "description": (f"Follow-up: {diagnosis.label}" if diagnosis else "Annual check-up"),
        "start": iso_datetime(day, minute),
        "end": iso_datetime(day, minute + minutes),
        "minutesDuration": minutes,
        "created": iso_datetime(max(day - 14, person.birth_ord), 9 * 60),
        "participant": [
            {"actor": ref("Patient", person.id), "required": "required", "status": "accepted"},
            {
                "actor": ref("Practitioner", practitioner),
                "required": "required",
                "status": "accepted",
            },
        ],
    }
    if diagnosis is not None:
        resource["reasonReference"] = [ref("Condition", diagnosis.id)]
    if diagnosis is not None and diagnosis.defn.sensitivity == "BH":
        resource["specialty"] = [concept(PSYCHIATRY)]
    return resource

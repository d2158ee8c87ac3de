"""One patient's complete record, from its index alone.

Each domain draws from its own stream seeded by ``(master seed, "patient", index, domain)``, so
patient *k* is identical whatever the population size, the order of generation, or changes to
another domain's draws.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

from seed import ids
from seed.conditions import (
    allergy_resources,
    condition_resource,
    draw_diagnoses,
    medication_request,
)
from seed.demographics import make_person, patient_resource, years_before
from seed.fhir import Resource
from seed.immunizations import immunization_resources
from seed.notes import document_reference, note_text
from seed.observations import ObservationContext, visit_observations
from seed.options import PopulationOptions
from seed.organizations import Tenant
from seed.physiology import apply_conditions, make_baseline, measure_vitals
from seed.visits import (
    EMERGENCY_VISIT,
    FOLLOWUP,
    INPATIENT_STAY,
    appointment_resource,
    encounter_resource,
    plan_bookings,
    plan_visits,
)


@dataclass(frozen=True, slots=True)
class PatientRecord:
    """A patient and every resource in its compartment; ``resources[0]`` is the Patient."""

    index: int
    tenant: str
    patient_id: str
    resources: tuple[Resource, ...]
    sensitivities: tuple[str, ...]  # sensitive categories in the record: "BH", "HIV", "SUD"

    @property
    def sensitive(self) -> bool:
        """Whether some resources of this record carry security labels."""
        return bool(self.sensitivities)

    @property
    def patient(self) -> Resource:
        return self.resources[0]

    def __iter__(self) -> Iterator[Resource]:
        return iter(self.resources)

    def __len__(self) -> int:
        return len(self.resources)


def window_start(options: PopulationOptions) -> date:
    return years_before(options.reference_date, options.history_years)


def generate_patient(
    options: PopulationOptions, tenants: tuple[Tenant, ...], index: int
) -> PatientRecord:
    master = options.seed

    def stream(domain: str) -> random.Random:
        return ids.stream(master, "patient", index, domain)

    reference = options.reference_date.toordinal()
    start = window_start(options).toordinal()
    tenant = tenants[ids.tenant_of_patient(index, options.tenants)]

    # One stream per domain: drawing more (or less) in one domain never shifts another.
    demographics = stream("demographics")  # person, name, address, contact
    physiology = stream("physiology")  # baseline vital signs and labs
    schedule = stream("schedule")  # visits, missed and future appointments
    person = make_person(index, tenant, options.reference_date, demographics)
    patient = patient_resource(person, options.tenants, demographics)
    baseline = make_baseline(physiology, person.sex == "male", person.age)
    diagnoses = draw_diagnoses(
        person, baseline, stream("conditions"), options.sensitive_share, reference
    )
    apply_conditions(baseline, physiology, {d.defn.key for d in diagnoses})

    conditions = [condition_resource(person, dx) for dx in diagnoses]
    medications_rng = stream("medications")
    medications = [
        medication_request(person, dx, n, medications_rng, reference)
        for n, dx in enumerate((d for d in diagnoses if d.medication), start=1)
    ]
    allergies = allergy_resources(person, stream("allergies"), reference)
    immunizations = immunization_resources(person, stream("immunizations"), reference, start)

    visits = plan_visits(person, diagnoses, schedule, start, reference)
    bookings = plan_bookings(person, visits, diagnoses, schedule, reference)

    ctx = ObservationContext(
        person=person,
        baseline=baseline,
        rng=stream("measurements"),
        window_start=start,
        diabetic=any(d.defn.key == "diabetes" for d in diagnoses),
        treated={d.defn.key for d in diagnoses if d.medication},
    )
    notes_rng = stream("notes")
    general = [d for d in diagnoses if not d.sensitive]
    appointments: list[Resource] = []
    encounters: list[Resource] = []
    documents: list[Resource] = []
    for n, visit in enumerate(visits, start=1):
        enc_id = f"enc-{person.key}-{n}"
        appt_id = None
        if visit.scheduled:
            appt_id = f"appt-{person.key}-{len(appointments) + 1}"
            minutes = visit.end_minute - visit.minute
            appointments.append(
                appointment_resource(
                    person,
                    appt_id,
                    "fulfilled",
                    visit.kind,
                    visit.day,
                    visit.minute,
                    minutes,
                    visit.practitioner,
                    visit.diagnosis,
                )
            )
        encounters.append(encounter_resource(person, visit, enc_id, appt_id))
        age = (visit.day - person.birth_ord) / 365.25
        acute = visit.kind in (EMERGENCY_VISIT, INPATIENT_STAY)
        vitals = measure_vitals(baseline, ctx.rng, age, (visit.day - start) / 365.25, acute)
        visit_observations(ctx, visit, enc_id, vitals)
        problems = [d for d in general if d.onset_ord <= visit.day]
        text = note_text(person, visit, vitals, problems, notes_rng)
        documents.append(document_reference(person, visit, enc_id, f"doc-{person.key}-{n}", text))
    for booking in bookings:
        appt_id = f"appt-{person.key}-{len(appointments) + 1}"
        minutes = 20 if booking.kind == FOLLOWUP else 30
        appointments.append(
            appointment_resource(
                person,
                appt_id,
                booking.status,
                booking.kind,
                booking.day,
                booking.minute,
                minutes,
                booking.practitioner,
                booking.diagnosis,
            )
        )

    resources = (
        patient,
        *conditions,
        *medications,
        *allergies,
        *immunizations,
        *appointments,
        *encounters,
        *ctx.resources,
        *documents,
    )
    return PatientRecord(
        index=index,
        tenant=tenant.id,
        patient_id=person.id,
        resources=resources,
        sensitivities=tuple(sorted({d.defn.sensitivity for d in diagnoses if d.defn.sensitivity})),
    )

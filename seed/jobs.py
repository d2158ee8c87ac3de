"""A population as load jobs: each transaction bundle encoded once, in load order, by phase.

Phase 1 is the shared bundle (Organizations, Practitioners, roles), phase 2 the patients' bundles
(independent of each other, so they may be posted concurrently), phase 3 the tenants' Groups
(which reference patients). A phase must be complete on the server before the next one starts,
because HAPI checks references on write. Phases are lazy: a patient's record is generated only
when its bundle is about to be sent, so memory stays flat whatever the population size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from seed.fhir import Resource
from seed.population import Population
from seed.record import PatientRecord
from seed.writers import bundle_json, dumps


@dataclass(frozen=True, slots=True)
class BundleJob:
    """One transaction bundle, ready to post."""

    name: str  # as the bundle's file in seed.writers: 1-patient-pat-a-000042
    subject: str  # what error messages call it: "the bundle of patient pat-a-000042"
    body: bytes
    resources: int
    patients: int = 0  # 1 for a patient's bundle

    @classmethod
    def of(
        cls, name: str, subject: str, resources: Sequence[Resource], patients: int = 0
    ) -> BundleJob:
        body = bundle_json(resources, [dumps(r) for r in resources]).encode()
        return cls(name, subject, body, len(resources), patients)


Phase = Iterable[BundleJob]


def shared_job(population: Population) -> BundleJob:
    return BundleJob.of("0-shared", "the shared bundle", population.shared_resources())


def patient_job(record: PatientRecord) -> BundleJob:
    return BundleJob.of(
        f"1-patient-{record.patient_id}",
        f"the bundle of patient {record.patient_id}",
        record.resources,
        patients=1,
    )


def group_jobs(population: Population) -> list[BundleJob]:
    return [
        BundleJob.of(f"2-group-{g['id']}", f"the bundle of Group {g['id']}", [g])
        for g in population.groups()
    ]


def patient_jobs(
    population: Population,
    start: int = 0,
    stop: int | None = None,
    on_record: Callable[[PatientRecord], None] | None = None,
) -> Iterator[BundleJob]:
    """Patients ``start..stop`` as jobs, generated one at a time; ``on_record`` sees each."""
    for record in population.records(start, stop):
        if on_record is not None:
            on_record(record)
        yield patient_job(record)


def population_phases(
    population: Population, on_record: Callable[[PatientRecord], None] | None = None
) -> list[Phase]:
    """The whole population in three phases: shared, patients, groups."""
    return [
        [shared_job(population)],
        patient_jobs(population, on_record=on_record),
        group_jobs(population),
    ]

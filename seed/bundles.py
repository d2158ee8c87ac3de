"""Transaction bundles for an idempotent load: every entry is ``PUT Type/id``.

Load order matters for servers that check references on write (HAPI does by default): the shared
bundle (Organizations, Practitioners, PractitionerRoles) first, then one bundle per patient, then
one bundle per Group (a Group references patients, so it comes last). ``iter_bundles`` yields them
in that order with a stable file name each.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from seed.fhir import Resource
from seed.population import Population
from seed.record import PatientRecord


def transaction_bundle(resources: Iterable[Resource]) -> Resource:
    """A ``transaction`` Bundle that PUTs each resource at its own id (create-or-update)."""
    entries = []
    for resource in resources:
        rtype, rid = resource.get("resourceType"), resource.get("id")
        if not rtype or not rid:
            raise ValueError(f"cannot PUT a resource without resourceType and id: {rtype}/{rid}")
        request = {"method": "PUT", "url": f"{rtype}/{rid}"}
        entries.append({"resource": resource, "request": request})
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def patient_bundle(record: PatientRecord) -> Resource:
    return transaction_bundle(record.resources)


def shared_bundle(population: Population) -> Resource:
    return transaction_bundle(population.shared_resources())


def group_bundles(population: Population) -> list[Resource]:
    return [transaction_bundle([g]) for g in population.groups()]


def iter_bundles(population: Population) -> Iterator[tuple[str, Resource]]:
    """``(name, bundle)`` in load order.

    ``0-shared``, then ``1-patient-<patient id>`` in patient index order, then
    ``2-group-<group id>``. The leading digit is the load phase, so sorting file names keeps
    the phases in order; patient bundles are independent of each other and may be loaded in any
    order or in parallel.
    """
    yield "0-shared", shared_bundle(population)
    for record in population.records():
        yield f"1-patient-{record.patient_id}", patient_bundle(record)
    for group in population.groups():
        yield f"2-group-{group['id']}", transaction_bundle([group])

"""Shared resources: one Organization per tenant, its Practitioners (with roles) and its Group."""

from __future__ import annotations

from dataclasses import dataclass

from seed import ids
from seed.codes import NPI_SYSTEM, NPI_TYPE, PROVIDER_ORG, SNOMED, Code
from seed.fhir import Resource, meta, ref
from seed.options import PopulationOptions
from seed.pools import ORG_SUFFIXES, TENANT_STATES, phone, pools, postal_code

FAMILY_PRACTICE = Code(SNOMED, "419772000", "Family practice")


@dataclass(frozen=True, slots=True)
class Tenant:
    """One organisation of the population and what patients need to point at it."""

    index: int
    id: str  # tenant-a
    letter: str  # a
    organization_id: str  # org-a
    group_id: str  # grp-a
    state: str
    city: str
    practitioner_ids: tuple[str, ...]


def make_tenants(options: PopulationOptions) -> tuple[Tenant, ...]:
    out = []
    for t in range(options.tenants):
        rng = ids.stream(options.seed, "tenant", t)
        out.append(
            Tenant(
                index=t,
                id=ids.tenant_id(t),
                letter=ids.tenant_letter(t),
                organization_id=ids.organization_id(t),
                group_id=ids.group_id(t),
                state=TENANT_STATES[t],
                city=rng.choice(pools().cities),
                practitioner_ids=tuple(
                    ids.practitioner_id(t, n) for n in range(options.practitioners_per_org)
                ),
            )
        )
    return tuple(out)


def organization(options: PopulationOptions, tenant: Tenant) -> Resource:
    rng = ids.stream(options.seed, "organization", tenant.index)
    name = f"{tenant.city} {rng.choice(ORG_SUFFIXES)}"
    domain = f"{tenant.id}.example.org"
    return {
        "resourceType": "Organization",
        "id": tenant.organization_id,
        "meta": meta(tenant.id),
        "identifier": [{"system": "https://fhirlab.dev/organization", "value": tenant.id}],
        "active": True,
        "type": [PROVIDER_ORG.concept],
        "name": name,
        "telecom": [
            {"system": "phone", "value": phone(rng), "use": "work"},
            {"system": "url", "value": f"https://{domain}", "use": "work"},
        ],
        "address": [
            {
                "use": "work",
                "line": [f"{rng.randint(1, 999)} {rng.choice(pools().streets)}"],
                "city": tenant.city,
                "state": tenant.state,
                "postalCode": postal_code(rng, tenant.state),
                "country": "US",
            }
        ],
    }


def practitioners(options: PopulationOptions, tenant: Tenant) -> list[Resource]:
    """Practitioners of one organisation, each followed by the PractitionerRole tying it there."""
    p = pools()
    out: list[Resource] = []
    for number, prac_id in enumerate(tenant.practitioner_ids):
        rng = ids.stream(options.seed, "practitioner", tenant.index, number)
        female = rng.random() < 0.5
        given = (p.first_female if female else p.first_male).pick(rng)
        family = p.last.pick(rng)
        out.append(
            {
                "resourceType": "Practitioner",
                "id": prac_id,
                "meta": meta(tenant.id),
                "identifier": [
                    {
                        "use": "official",
                        "type": NPI_TYPE.concept,
                        "system": NPI_SYSTEM,
                        "value": ids.npi(tenant.index, number),
                    }
                ],
                "active": True,
                "name": [
                    {"use": "official", "family": family, "given": [given], "prefix": ["Dr."]}
                ],
                "telecom": [
                    {
                        "system": "email",
                        "value": f"{given}.{family}@{tenant.id}.example.org".lower(),
                        "use": "work",
                    }
                ],
                "gender": "female" if female else "male",
            }
        )
        out.append(
            {
                "resourceType": "PractitionerRole",
                "id": ids.practitioner_role_id(tenant.index, number),
                "meta": meta(tenant.id),
                "active": True,
                "practitioner": ref("Practitioner", prac_id),
                "organization": ref("Organization", tenant.organization_id),
                "code": [{"text": "Primary care physician"}],
                "specialty": [FAMILY_PRACTICE.concept],
            }
        )
    return out


def group(options: PopulationOptions, tenant: Tenant) -> Resource:
    """The tenant's patients as an actual person Group, the unit of ``Group/$export``."""
    members = [
        {"entity": ref("Patient", ids.patient_id(k, options.tenants))}
        for k in range(tenant.index, options.patients, options.tenants)
    ]
    resource: Resource = {
        "resourceType": "Group",
        "id": tenant.group_id,
        "meta": meta(tenant.id),
        "identifier": [{"system": "https://fhirlab.dev/group", "value": tenant.id}],
        "active": True,
        "type": "person",
        "actual": True,
        "name": f"All patients of {tenant.id}",
        "managingEntity": ref("Organization", tenant.organization_id),
        "quantity": len(members),
    }
    if members:  # FHIR JSON has no empty arrays
        resource["member"] = members
    return resource

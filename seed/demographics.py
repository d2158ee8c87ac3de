"""Who a patient is: sex, age (US-like pyramid), name, address, contact, identifiers."""

from __future__ import annotations

import bisect
import itertools
import random
from dataclasses import dataclass
from datetime import date

from seed import ids
from seed.codes import MARITAL_STATUS, MRN_TYPE, Code
from seed.fhir import Resource, iso_date, meta, ref
from seed.organizations import Tenant
from seed.pools import phone, pools, postal_code

#: Five-year age bands (lower bound, upper bound inclusive) and their share of the US
#: population (Census 2020, rounded); the last band runs to 100.
AGE_BANDS: tuple[tuple[int, int, float], ...] = (
    (0, 4, 5.7), (5, 9, 6.0), (10, 14, 6.4), (15, 19, 6.5), (20, 24, 6.5), (25, 29, 6.8),
    (30, 34, 6.9), (35, 39, 6.6), (40, 44, 6.3), (45, 49, 6.0), (50, 54, 6.3), (55, 59, 6.4),
    (60, 64, 6.3), (65, 69, 5.3), (70, 74, 4.3), (75, 79, 2.9), (80, 84, 1.8), (85, 89, 1.1),
    (90, 94, 0.5), (95, 100, 0.15),
)  # fmt: skip
_AGE_CUMULATIVE = tuple(itertools.accumulate(w for _, _, w in AGE_BANDS))

_MARITAL = (
    Code(MARITAL_STATUS, "S", "Never Married"),
    Code(MARITAL_STATUS, "M", "Married"),
    Code(MARITAL_STATUS, "D", "Divorced"),
    Code(MARITAL_STATUS, "W", "Widowed"),
)
_LANGUAGES = (("en-US", "English (United States)", 0.88), ("es", "Spanish", 0.12))


@dataclass(frozen=True, slots=True)
class Person:
    """The facts about a patient that other domains (conditions, visits) depend on."""

    index: int
    id: str  # pat-a-000042
    key: str  # a-000042, shared by the ids of all the patient's resources
    tenant: Tenant
    sex: str  # female | male
    birth_ord: int  # proleptic Gregorian ordinal of the birth date
    age: int  # completed years at the reference date
    gp: str  # Practitioner id of the general practitioner
    given: str
    family: str


def years_before(day: date, years: int) -> date:
    """The same calendar day ``years`` earlier (29 February falls back to the 28th)."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def completed_years(birth_ord: int, day_ord: int) -> int:
    """Age in completed years on ``day_ord`` of someone born on ``birth_ord``."""
    birth, day = date.fromordinal(birth_ord), date.fromordinal(day_ord)
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def draw_age(rng: random.Random) -> int:
    band = bisect.bisect_right(_AGE_CUMULATIVE, rng.random() * _AGE_CUMULATIVE[-1])
    low, high, _ = AGE_BANDS[min(band, len(AGE_BANDS) - 1)]
    return rng.randint(low, high)


def draw_birth_date(rng: random.Random, reference: date, age: int) -> date:
    """A birth date at which the patient is exactly ``age`` completed years on ``reference``."""
    latest = years_before(reference, age)  # turns ``age`` on the reference day
    earliest_excl = years_before(reference, age + 1)  # would already be ``age + 1``
    span = (latest - earliest_excl).days
    return date.fromordinal(latest.toordinal() - rng.randrange(span))


def make_person(index: int, tenant: Tenant, reference: date, rng: random.Random) -> Person:
    p = pools()
    sex = "female" if rng.random() < 0.51 else "male"
    age = draw_age(rng)
    birth = draw_birth_date(rng, reference, age)
    given = (p.first_female if sex == "female" else p.first_male).pick(rng)
    family = p.last.pick(rng)
    key = f"{tenant.letter}-{index:06d}"
    gp = tenant.practitioner_ids[rng.randrange(len(tenant.practitioner_ids))]
    return Person(index, f"pat-{key}", key, tenant, sex, birth.toordinal(), age, gp, given, family)


def patient_resource(person: Person, tenants: int, rng: random.Random) -> Resource:
    p = pools()
    tenant = person.tenant
    given = [person.given]
    if rng.random() < 0.4:
        given.append((p.first_female if person.sex == "female" else p.first_male).pick(rng))
    city = tenant.city if rng.random() < 0.6 else p.cities[rng.randrange(len(p.cities))]
    street = p.streets[rng.randrange(len(p.streets))]
    telecom = [
        {"system": "phone", "value": phone(rng), "use": "mobile" if rng.random() < 0.7 else "home"}
    ]
    if person.age >= 13:
        email = f"{person.given}.{person.family}{rng.randint(1, 99)}@example.com".lower()
        telecom.append({"system": "email", "value": email, "use": "home"})
    lang, lang_display, _ = _LANGUAGES[0] if rng.random() < _LANGUAGES[0][2] else _LANGUAGES[1]
    resource: Resource = {
        "resourceType": "Patient",
        "id": person.id,
        "meta": meta(tenant.id),
        "identifier": [
            {
                "use": "usual",
                "type": MRN_TYPE.concept,
                "system": ids.mrn_system(tenant.index),
                "value": ids.mrn(person.index, tenants),
                "assigner": ref("Organization", tenant.organization_id),
            }
        ],
        "active": True,
        "name": [{"use": "official", "family": person.family, "given": given}],
        "telecom": telecom,
        "gender": person.sex,
        "birthDate": iso_date(person.birth_ord),
        "address": [
            {
                "use": "home",
                "type": "both",
                "line": [f"{rng.randint(1, 9999)} {street}"],
                "city": city,
                "state": tenant.state,
                "postalCode": postal_code(rng, tenant.state),
                "country": "US",
            }
        ],
        "communication": [
            {
                "language": {
                    "coding": [{"system": "urn:ietf:bcp:47", "code": lang, "display": lang_display}]
                },
                "preferred": True,
            }
        ],
        "generalPractitioner": [ref("Practitioner", person.gp)],
        "managingOrganization": ref("Organization", tenant.organization_id),
    }
    if person.age >= 18:
        resource["maritalStatus"] = _marital(rng, person.age).concept
    return resource


def _marital(rng: random.Random, age: int) -> Code:
    if age < 25:
        weights = (0.85, 0.13, 0.02, 0.0)
    elif age < 65:
        weights = (0.30, 0.52, 0.15, 0.03)
    else:
        weights = (0.07, 0.53, 0.15, 0.25)
    return rng.choices(_MARITAL, weights=weights)[0]

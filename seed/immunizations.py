"""Immunization history (CVX): childhood series, influenza seasons, COVID-19, pneumococcal.

Every dose falls after the birth date and on or before the reference date, and only when the
vaccine existed and the patient was eligible at that age.
"""

from __future__ import annotations

import random
from datetime import date

from seed.codes import COVID19_MRNA, HEPB_PEDIATRIC, INFLUENZA, MMR, PNEUMO_PPSV23, TDAP, Code
from seed.demographics import Person
from seed.fhir import Resource, concept, iso_date, meta, ref

_HEPB_UNIVERSAL = date(1991, 11, 1).toordinal()  # universal infant hepatitis B vaccination (US)
_MMR_LICENSED = date(1971, 1, 1).toordinal()
_TDAP_LICENSED = date(2005, 6, 1).toordinal()
_PPSV23_LICENSED = date(1983, 7, 1).toordinal()
_COVID_START = date(2021, 5, 15).toordinal()  # adolescents (12+) eligible from mid-May 2021
_COVID_END = date(2021, 10, 31).toordinal()


def immunization_resources(
    person: Person, rng: random.Random, reference_ord: int, window_start_ord: int
) -> list[Resource]:
    birth = person.birth_ord
    doses: list[tuple[int, Code]] = []

    def maybe(day: int, vaccine: Code, probability: float, not_before: int = 0) -> None:
        if birth < day <= reference_ord and day >= not_before and rng.random() < probability:
            doses.append((day, vaccine))

    maybe(birth + 1, HEPB_PEDIATRIC, 0.9, _HEPB_UNIVERSAL)
    maybe(birth + rng.randint(365, 455), MMR, 0.9, _MMR_LICENSED)
    maybe(birth + int(rng.uniform(11, 12.9) * 365.25), TDAP, 0.8, _TDAP_LICENSED)
    maybe(birth + int(rng.uniform(65, 66) * 365.25), PNEUMO_PPSV23, 0.6, _PPSV23_LICENSED)

    age_at_covid = (_COVID_START - birth) / 365.25
    if age_at_covid >= 12:
        first = rng.randint(_COVID_START, _COVID_END)
        if rng.random() < 0.65 and first <= reference_ord:
            doses.append((first, COVID19_MRNA))
            maybe(first + 21, COVID19_MRNA, 0.9)

    flu_p = 0.6 if person.age < 5 else 0.45 if person.age < 18 else 0.7 if person.age >= 65 else 0.4
    first_season = date.fromordinal(window_start_ord).year
    for year in range(first_season, date.fromordinal(reference_ord).year + 1):
        day = date(year, 9, 15).toordinal() + rng.randrange(91)  # 15 Sep – 14 Dec
        if day >= window_start_ord and day - birth >= 183:
            maybe(day, INFLUENZA, flu_p)

    doses.sort(key=lambda d: (d[0], d[1].code))
    tenant = person.tenant.id
    return [
        {
            "resourceType": "Immunization",
            "id": f"imm-{person.key}-{n}",
            "meta": meta(tenant),
            "status": "completed",
            "vaccineCode": concept(vaccine),
            "patient": ref("Patient", person.id),
            "occurrenceDateTime": iso_date(day),
            "primarySource": True,
            "lotNumber": f"{rng.choice('ABCDEFGHJKLMNPRSTUVWXYZ')}{rng.randint(1000, 99999)}",
        }
        for n, (day, vaccine) in enumerate(doses, start=1)
    ]

from __future__ import annotations

from datetime import date

from hypothesis import given
from hypothesis import strategies as st

from seed import ids
from seed.demographics import completed_years, draw_birth_date, years_before


def test_patient_and_tenant_ids() -> None:
    assert ids.tenant_id(0) == "tenant-a"
    assert ids.tenant_id(25) == "tenant-z"
    assert ids.patient_id(42, 2) == "pat-a-000042"
    assert ids.patient_id(43, 2) == "pat-b-000043"
    assert ids.patient_id(1_234_567, 3) == "pat-b-1234567"
    assert ids.organization_id(1) == "org-b"
    assert ids.practitioner_id(0, 7) == "prac-a-007"
    assert ids.group_id(2) == "grp-c"
    assert ids.mrn_system(1) == "https://fhirlab.dev/tenant-b/mrn"


def test_derive_seed_is_a_stable_hash() -> None:
    # Pinned: changing the derivation silently changes every population.
    assert ids.derive_seed(42, "patient", 0, "demographics") == 18391662193038739517
    assert ids.derive_seed(42, "patient", 0, "demographics") != ids.derive_seed(
        42, "patient", 1, "demographics"
    )
    assert ids.stream(7, "x").random() == ids.stream(7, "x").random()


def test_npi_check_digit() -> None:
    assert ids.npi_is_valid("1234567893")  # the CMS example NPI
    assert not ids.npi_is_valid("1234567890")
    generated = {ids.npi(t, n) for t in range(3) for n in range(50)}
    assert len(generated) == 150
    assert all(ids.npi_is_valid(v) and v.startswith("9") for v in generated)


def test_mrns_are_unique() -> None:
    values = [ids.mrn(k, 2) for k in range(20_000)]
    assert len(set(values)) == len(values)
    assert values[0] == "A00104729"


@given(
    reference=st.dates(min_value=date(1990, 1, 1), max_value=date(2100, 12, 31)),
    age=st.integers(min_value=0, max_value=100),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_birth_date_gives_exact_completed_age(reference: date, age: int, seed: int) -> None:
    birth = draw_birth_date(ids.stream(seed, "t"), reference, age)
    assert birth <= reference
    assert completed_years(birth.toordinal(), reference.toordinal()) == age


def test_years_before_leap_day() -> None:
    assert years_before(date(2024, 2, 29), 1) == date(2023, 2, 28)
    assert years_before(date(2024, 2, 29), 4) == date(2020, 2, 29)

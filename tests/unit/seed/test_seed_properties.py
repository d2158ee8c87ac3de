"""Properties of any single patient, whatever the seed, index and options."""

from __future__ import annotations

from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from seed import PopulationOptions, generate_population
from seed.ids import FHIR_ID_RE
from tests.unit.seed.helpers import walk


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(min_value=0, max_value=2**63 - 1),
    index=st.integers(min_value=0, max_value=999_999),
    tenants=st.integers(min_value=1, max_value=26),
    practitioners=st.integers(min_value=1, max_value=12),
    history_years=st.integers(min_value=1, max_value=6),
    share=st.floats(min_value=0.0, max_value=1.0),
    reference=st.dates(min_value=date(2005, 1, 1), max_value=date(2040, 12, 31)),
)
def test_any_patient_is_self_consistent(
    seed: int,
    index: int,
    tenants: int,
    practitioners: int,
    history_years: int,
    share: float,
    reference: date,
) -> None:
    options = PopulationOptions(
        patients=index + 1,
        seed=seed,
        tenants=tenants,
        practitioners_per_org=practitioners,
        history_years=history_years,
        sensitive_share=share,
        reference_date=reference,
    )
    pop = generate_population(options)
    record = pop.record(index)
    tenant = pop.tenants[index % tenants]
    shared = {f"{r['resourceType']}/{r['id']}" for r in pop.shared_resources()}
    own = {f"{r['resourceType']}/{r['id']}" for r in record.resources}
    birth = record.patient["birthDate"]
    assert record.patient_id == f"pat-{tenant.letter}-{index:06d}"
    assert len(own) == len(record.resources)
    for resource in record.resources:
        assert FHIR_ID_RE.match(resource["id"])
        assert resource["meta"]["tag"][0]["code"] == tenant.id
        for d in walk(resource):
            if "reference" in d:
                assert d["reference"] in own or d["reference"] in shared, d["reference"]
        for key in ("onsetDateTime", "occurrenceDateTime", "effectiveDateTime", "recordedDate"):
            if key in resource:
                assert birth <= resource[key][:10] <= reference.isoformat(), (key, resource)

from __future__ import annotations

import dataclasses
from datetime import date, datetime

import pytest

from seed.options import DEFAULT_REFERENCE_DATE, OptionsError, PopulationOptions


def test_defaults() -> None:
    options = PopulationOptions(patients=10, seed=1)
    assert options.tenants == 2
    assert options.practitioners_per_org == 8
    assert options.history_years == 2
    assert options.reference_date == DEFAULT_REFERENCE_DATE == date(2025, 6, 2)


def test_frozen() -> None:
    options = PopulationOptions(patients=10, seed=1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.patients = 11  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"patients": -1}, "PopulationOptions.patients must be between 0 and 10000000; got -1"),
        ({"patients": 2.5}, "PopulationOptions.patients must be an integer; got 2.5"),
        ({"patients": True}, "PopulationOptions.patients must be an integer; got True"),
        ({"seed": -3}, "PopulationOptions.seed must be between 0 and"),
        ({"tenants": 0}, "PopulationOptions.tenants must be between 1 and 26 (tenant ids"),
        ({"tenants": 27}, "got 27"),
        ({"practitioners_per_org": 0}, "PopulationOptions.practitioners_per_org must be between"),
        ({"history_years": 21}, "PopulationOptions.history_years must be between 1 and 20"),
        ({"sensitive_share": 1.5}, "PopulationOptions.sensitive_share must be a number between"),
        ({"sensitive_share": "0.1"}, "sensitive_share must be a number between 0 and 1; got '0.1'"),
        ({"reference_date": "2025-01-01"}, "reference_date must be a datetime.date"),
        ({"reference_date": datetime(2025, 1, 1)}, "reference_date must be a datetime.date"),
        ({"reference_date": date(1980, 1, 1)}, "between 1990-01-01 and 2100-12-31"),
    ],
)
def test_invalid_options_name_field_and_value(kwargs: dict[str, object], message: str) -> None:
    base: dict[str, object] = {"patients": 10, "seed": 1}
    with pytest.raises(OptionsError) as info:
        PopulationOptions(**{**base, **kwargs})  # type: ignore[arg-type]
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)


def test_from_mapping_parses_iso_date_and_round_trips() -> None:
    options = PopulationOptions.from_mapping(
        {"patients": 5, "seed": 9, "tenants": 3, "reference_date": "2024-02-29"}
    )
    assert options.reference_date == date(2024, 2, 29)
    assert PopulationOptions.from_mapping(options.to_dict()) == options
    assert options.to_dict()["reference_date"] == "2024-02-29"


def test_from_mapping_rejects_unknown_and_missing_keys() -> None:
    with pytest.raises(OptionsError, match="unknown population option\\(s\\) patient_count"):
        PopulationOptions.from_mapping({"patients": 1, "seed": 1, "patient_count": 3})
    with pytest.raises(OptionsError, match="population option\\(s\\) seed must be given"):
        PopulationOptions.from_mapping({"patients": 1})
    with pytest.raises(OptionsError, match="ISO date like 2025-06-02; got 'June 1st'"):
        PopulationOptions.from_mapping({"patients": 1, "seed": 1, "reference_date": "June 1st"})

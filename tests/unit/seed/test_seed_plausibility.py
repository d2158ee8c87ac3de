"""Clinical plausibility at N=2000 with default options, gathered in one streaming pass."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date

import pytest

from seed import Population
from seed.demographics import completed_years
from seed.record import window_start

HYPERTENSION, DIABETES = "59621000", "44054006"


@dataclass
class Stats:
    patients: int = 0
    ages: list[int] = field(default_factory=list)
    by_band: Counter[str] = field(default_factory=Counter)
    hypertension_by_band: Counter[str] = field(default_factory=Counter)
    glucose: dict[bool, list[float]] = field(default_factory=lambda: defaultdict(list))
    hba1c_diabetic: list[float] = field(default_factory=list)
    height_spread_adults: list[float] = field(default_factory=list)
    sensitive_eligible: int = 0
    sensitive: int = 0
    date_problems: list[str] = field(default_factory=list)
    appointment_problems: list[str] = field(default_factory=list)
    resources: int = 0


def _band(age: int) -> str:
    return "under 30" if age < 30 else "30-59" if age < 60 else "60+"


@pytest.fixture(scope="module")
def stats(default_population: Population) -> Stats:
    options = default_population.options
    ref = options.reference_date.isoformat()
    start = window_start(options).isoformat()
    s = Stats()
    for rec in default_population.records():
        s.patients += 1
        s.resources += len(rec.resources)
        birth = rec.patient["birthDate"]
        age = completed_years(
            date.fromisoformat(birth).toordinal(), options.reference_date.toordinal()
        )
        s.ages.append(age)
        s.by_band[_band(age)] += 1
        s.sensitive_eligible += age >= 13
        s.sensitive += rec.sensitive
        snomed = {
            r["code"]["coding"][0]["code"]
            for r in rec.resources
            if r["resourceType"] == "Condition"
        }
        s.hypertension_by_band[_band(age)] += HYPERTENSION in snomed
        heights = []
        for r in rec.resources:
            rtype = r["resourceType"]
            when = (
                r.get("onsetDateTime")
                or r.get("occurrenceDateTime")
                or r.get("effectiveDateTime")
                or r.get("period", {}).get("start")
                or r.get("authoredOn")
                or ""
            )[:10]
            if when and not birth <= when <= ref:
                s.date_problems.append(f"{r['id']}: {when} outside {birth}..{ref}")
            if rtype in ("Encounter", "Observation") and when < start:
                s.date_problems.append(f"{r['id']}: {when} before the history window {start}")
            if rtype == "Appointment":
                future = r["start"][:10] > ref
                if future != (r["status"] == "booked"):
                    s.appointment_problems.append(f"{r['id']} {r['status']} at {r['start']}")
            if rtype == "Observation" and "valueQuantity" in r:
                code, value = r["code"]["coding"][0]["code"], r["valueQuantity"]["value"]
                if code == "2345-7":
                    s.glucose[DIABETES in snomed].append(value)
                elif code == "4548-4":
                    s.hba1c_diabetic.append(value)
                elif code == "8302-2" and age >= 21:
                    heights.append(value)
        if len(heights) >= 2:
            s.height_spread_adults.append(max(heights) - min(heights))
    return s


def test_resources_per_patient_is_default_size(stats: Stats) -> None:
    assert 30 <= stats.resources / stats.patients <= 60


def test_age_pyramid_is_us_like(stats: Stats) -> None:
    ages = stats.ages
    assert min(ages) >= 0 and max(ages) <= 100
    assert 35 <= statistics.mean(ages) <= 43  # US mean age ≈ 39
    assert 0.18 <= sum(a < 18 for a in ages) / len(ages) <= 0.26  # US ≈ 22 %
    assert 0.13 <= sum(a >= 65 for a in ages) / len(ages) <= 0.21  # US ≈ 17 %
    assert sum(a >= 90 for a in ages) >= 3


def test_hypertension_prevalence_rises_with_age(stats: Stats) -> None:
    rate = {b: stats.hypertension_by_band[b] / stats.by_band[b] for b in stats.by_band}
    assert rate["under 30"] < 0.08
    assert 0.18 < rate["30-59"] < 0.42
    assert rate["60+"] > 0.55
    assert rate["60+"] > 5 * rate["under 30"]


def test_diabetics_have_higher_glucose_and_hba1c(stats: Stats) -> None:
    diabetic, other = stats.glucose[True], stats.glucose[False]
    assert len(diabetic) > 50 and len(other) > 500
    assert statistics.mean(other) < 100 < 130 < statistics.mean(diabetic)
    assert min(stats.hba1c_diabetic) >= 6.5 - 0.6  # diagnosed at HbA1c ≥ 6.5 %
    assert statistics.mean(stats.hba1c_diabetic) > 7.0


def test_values_are_consistent_over_time(stats: Stats) -> None:
    """An adult's height barely moves between visits (baseline plus small noise)."""
    assert len(stats.height_spread_adults) > 50
    assert max(stats.height_spread_adults) <= 0.2


def test_dates_fall_between_birth_and_reference(stats: Stats) -> None:
    assert not stats.date_problems, stats.date_problems[:5]


def test_only_future_appointments_are_booked(stats: Stats) -> None:
    assert not stats.appointment_problems, stats.appointment_problems[:5]


def test_sensitive_share_matches_the_option(stats: Stats, default_population: Population) -> None:
    share = default_population.options.sensitive_share
    observed = stats.sensitive / stats.sensitive_eligible
    assert share - 0.035 < observed < share + 0.035

"""Shared populations for the seed tests (generated once per session)."""

from __future__ import annotations

from typing import Any

import pytest

from seed import PatientRecord, Population, PopulationOptions, generate_population

SEED = 20250602


@pytest.fixture(scope="session")
def population() -> Population:
    """A small population, 3 tenants, a high sensitive share so every kind of record appears."""
    return generate_population(
        PopulationOptions(patients=240, seed=SEED, tenants=3, sensitive_share=0.5)
    )


@pytest.fixture(scope="session")
def records(population: Population) -> list[PatientRecord]:
    return list(population.records())


@pytest.fixture(scope="session")
def all_resources(population: Population, records: list[PatientRecord]) -> list[dict[str, Any]]:
    patient_resources = [r for rec in records for r in rec.resources]
    return population.shared_resources() + patient_resources + population.groups()


@pytest.fixture(scope="session")
def default_population() -> Population:
    """The default options at N=2000, for distributions (streamed, never held in memory)."""
    return generate_population(PopulationOptions(patients=2000, seed=SEED))

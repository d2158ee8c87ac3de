"""Synthetic FHIR R4 population for the lab: deterministic, multi-tenant, with sensitive records.

>>> from seed import PopulationOptions, generate_population
>>> population = generate_population(PopulationOptions(patients=100, seed=42))
>>> first = next(iter(population))
>>> first.patient["id"]
'pat-a-000000'
"""

from seed.options import OptionsError, PopulationOptions
from seed.population import Population, Summary, generate_population
from seed.record import PatientRecord

__all__ = [
    "OptionsError",
    "PatientRecord",
    "Population",
    "PopulationOptions",
    "Summary",
    "generate_population",
]

"""Scenarios: declarative AI-vendor clients (registration, weighted steps, expected verdicts).

`load_library()` reads `scenarios/*.yaml`; `validate(path)` lists every problem of one file;
`resolve(text, bindings)` fills `{my_patient}`-style parameters at run time.
"""

from simulator.scenarios.loader import lab_library, load_library, load_scenario, validate
from simulator.scenarios.model import LoadSettings, Scenario, SessionEnd
from simulator.scenarios.params import (
    PARAMETERS,
    Bindings,
    ParameterError,
    bindings_for,
    resolve,
)
from simulator.scenarios.problems import Problem
from simulator.scenarios.steps import (
    STEP_TYPES,
    BurstStep,
    ExportStep,
    PageWalkStep,
    RefreshStep,
    RequestStep,
    StepBase,
)
from simulator.scenarios.vocabulary import CONTROLS, Kind, Launch, User, Verdict

__all__ = [
    "CONTROLS",
    "PARAMETERS",
    "STEP_TYPES",
    "Bindings",
    "BurstStep",
    "ExportStep",
    "Kind",
    "Launch",
    "LoadSettings",
    "PageWalkStep",
    "ParameterError",
    "Problem",
    "RefreshStep",
    "RequestStep",
    "Scenario",
    "SessionEnd",
    "StepBase",
    "User",
    "Verdict",
    "bindings_for",
    "lab_library",
    "load_library",
    "load_scenario",
    "resolve",
    "validate",
]

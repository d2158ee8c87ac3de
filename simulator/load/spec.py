"""What the command hands to a Locust process: one JSON file per configuration (plain data).

The Locust process rebuilds the plan from the library and the scenario names, and the lab's
configuration from the `FHIRLAB_*` environment (`lab_environment`), so nothing but names,
numbers and paths crosses the process boundary.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from simulator.stack.config import LabConfig

_URL_VARS = {
    "gateway": "FHIRLAB_GATEWAY_URL",
    "hapi": "FHIRLAB_HAPI_URL",
    "keycloak": "FHIRLAB_KEYCLOAK_URL",
    "keycloak_health": "FHIRLAB_KEYCLOAK_HEALTH_URL",
}


@dataclass(frozen=True)
class Population:
    """The seeded population the users draw their parameters from (`bindings_for`)."""

    patients: int
    tenants: int
    seed: int
    logins: int | None
    common_family: str


@dataclass(frozen=True)
class LoadSpec:
    host: str  # the configuration's gateway FHIR base
    scenarios: tuple[str, ...]
    library: str | None
    read_only: bool
    users: int
    spawn_rate: float
    seconds: float
    workers: int
    population: Population
    csv_prefix: str  # Locust's CSVs: <prefix>_stats.csv, ...
    samples_path: str  # raw response times (simulator.load.samples)
    pace: float = 0.0  # requests per second per user; 0: no think time
    master_port: int | None = None
    worker_wait_s: float = 60.0  # the master's wait for its workers to connect
    login_budget_s: float = 120.0  # the wait for every user's token before the measured time

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["scenarios"] = list(self.scenarios)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LoadSpec:
        data = dict(data)
        data["population"] = Population(**data["population"])
        data["scenarios"] = tuple(data["scenarios"])
        return cls(**data)

    def write(self, path: Path) -> Path:
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return path

    @classmethod
    def read(cls, path: Path) -> LoadSpec:
        return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))


def lab_environment(cfg: LabConfig) -> dict[str, str]:
    """The environment that makes `load_config()` in a child process describe `cfg`'s lab."""
    env = {
        **os.environ,
        "FHIRLAB_HOME": str(cfg.home),
        "FHIRLAB_CACHE": str(cfg.cache),
        "FHIRLAB_GATEWAY_PORT": str(cfg.ports.gateway),
        "FHIRLAB_KEYCLOAK_PORT": str(cfg.ports.keycloak),
        "FHIRLAB_KEYCLOAK_MANAGEMENT_PORT": str(cfg.ports.keycloak_management),
        "FHIRLAB_HAPI_PORT": str(cfg.ports.hapi),
        "FHIRLAB_STACK": "external" if cfg.external else "native",
    }
    for key, var in _URL_VARS.items():
        env.pop(var, None)
        if key in cfg.url_overrides:
            env[var] = cfg.url_overrides[key]
    if cfg.gateway_policy is not None:
        env["FHIRLAB_GATEWAY_POLICY"] = str(cfg.gateway_policy)
    else:
        env.pop("FHIRLAB_GATEWAY_POLICY", None)
    return env

"""What the command hands to the Locust process: one JSON file per run (plain data).

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

from labcore.config import LabConfig

SAMPLES_FILE = "samples.json"

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
class Slice:
    """A slice of the run: the users send to `host` (a configuration's gateway) for `seconds`.
    Its raw samples (`<directory>/samples.json`) go to `directory`, its Locust CSVs
    (`locust_stats.csv`, ...) to `csv_directory` (`directory` when empty). Slices of the same
    `group` run at the same time, each request going to one of them drawn at random (the
    requests interleaved): they share `csv_directory`, and the group runs for their seconds
    together."""

    config: str
    round: int  # 1..rounds; 0: the unmeasured warm-up
    seconds: float
    host: str
    directory: str
    group: int = -1  # slices of one group (>= 0) run together; -1: alone
    csv_directory: str = ""

    @property
    def csv_prefix(self) -> str:
        return str(Path(self.csv_directory or self.directory) / "locust")

    @property
    def samples_path(self) -> Path:
        return Path(self.directory) / SAMPLES_FILE


@dataclass(frozen=True)
class LoadSpec:
    slices: tuple[Slice, ...]  # in the order run
    scenarios: tuple[str, ...]
    library: str | None
    read_only: bool
    users: int
    spawn_rate: float
    workers: int
    population: Population
    login_samples_path: str  # the users' token acquisitions before the first slice
    pace: float = 0.0  # requests per second per user; 0: no think time
    master_port: int | None = None
    worker_wait_s: float = 60.0  # the master's wait for its workers to connect
    login_budget_s: float = 120.0  # the wait for every user's token before the first slice
    drain_budget_s: float = 30.0  # after a slice, the wait for the requests still in flight

    @property
    def host(self) -> str:
        return self.slices[0].host

    def groups(self) -> list[list[int]]:
        """The slices' indices in the order run, those of one group together."""
        found: list[list[int]] = []
        for index, piece in enumerate(self.slices):
            if found and piece.group >= 0 and self.slices[found[-1][0]].group == piece.group:
                found[-1].append(index)
            else:
                found.append([index])
        return found

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.slices)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["scenarios"] = list(self.scenarios)
        data["slices"] = [asdict(s) for s in self.slices]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LoadSpec:
        data = dict(data)
        data["population"] = Population(**data["population"])
        data["scenarios"] = tuple(data["scenarios"])
        data["slices"] = tuple(Slice(**s) for s in data["slices"])
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
    for var, path in (
        ("FHIRLAB_GATEWAY_POLICY", cfg.gateway_policy),
        ("FHIRLAB_CLIENTS", cfg.clients_dir),
        ("FHIRLAB_SCENARIOS", cfg.scenarios_dir),
    ):
        if path is not None:
            env[var] = str(path)
        else:
            env.pop(var, None)
    return env

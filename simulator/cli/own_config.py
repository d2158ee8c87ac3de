"""Your own configuration on `run`, `load`, `lab` and `compare`: `--scenarios DIR` (a scenario
library instead of scenarios/), `--clients DIR` (client profiles over keycloak/clients/, by
client_id) and `--policy FILE` (a gateway policy instead of gateway/policy.yaml).

Each is checked before anything runs, with the same file/line/field errors as the lab's own files.
With `--clients` or `--policy` the scenarios go through an extra gateway started with them (the
lab's gateway keeps running as it is), and Keycloak gets the lab's profiles back afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated

import typer

from gateway.policy import load_policy
from labcore.config import LabConfig
from labcore.errors import LabError
from simulator.authserver.apply import select_profiles
from simulator.scenarios import lab_library

ScenariosDir = Annotated[
    Path | None,
    typer.Option(
        "--scenarios",
        "--library",
        help="your scenario library, a directory of scenario files (default: scenarios/)",
    ),
]
ClientsDir = Annotated[
    Path | None,
    typer.Option(
        "--clients",
        help="your client profiles, a directory of profile files over keycloak/clients/ "
        "(same client_id: yours replaces the lab's)",
    ),
]
PolicyFile = Annotated[
    Path | None,
    typer.Option("--policy", help="your gateway policy file (default: gateway/policy.yaml)"),
]


@dataclass(frozen=True)
class OwnConfig:
    scenarios: Path | None = None
    clients: Path | None = None
    policy: Path | None = None

    @property
    def needs_own_gateway(self) -> bool:
        """Your clients or your policy: the lab's running gateway knows neither."""
        return self.clients is not None or self.policy is not None

    def label(self) -> str:
        parts = [
            f"{flag} {path}"
            for flag, path in (
                ("--scenarios", self.scenarios),
                ("--clients", self.clients),
                ("--policy", self.policy),
            )
            if path is not None
        ]
        return ", ".join(parts) or "the lab's configuration"


def _directory(path: Path, option: str, what: str) -> Path:
    path = path.expanduser().resolve()
    if not path.is_dir():
        raise LabError(f"{option} {path}: no such directory", f"give a directory of {what} files")
    if not any(path.glob("*.yaml")):
        raise LabError(
            f"{option} {path}: no *.yaml files in it", f"put one {what} per <name>.yaml file there"
        )
    return path


def with_own_config(cfg: LabConfig, own: OwnConfig) -> LabConfig:
    """`cfg` with your files in place of the lab's, every file checked first."""
    if own.policy is not None:
        policy = own.policy.expanduser().resolve()
        if not policy.is_file():
            raise LabError(f"--policy {policy}: no such file", "give a gateway policy YAML file")
        load_policy(policy)  # the policy's own file/line/field errors
        cfg = replace(cfg, gateway_policy=policy)
    if own.clients is not None:
        cfg = replace(cfg, clients_dir=_directory(own.clients, "--clients", "client profile"))
        select_profiles(cfg)  # every profile valid, every tenant known
    if own.scenarios is not None:
        cfg = replace(cfg, scenarios_dir=_directory(own.scenarios, "--scenarios", "scenario"))
    if own.scenarios is not None or own.clients is not None:
        lab_library(cfg)  # the scenarios against the profiles they will run with
    return cfg

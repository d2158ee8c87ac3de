"""Replay a set of scenarios against one gateway, and the same set against a controls-off
baseline gateway, so each scenario's damage is counted with the controls and without them."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from gateway.controls import Mode
from labcore.config import LabConfig
from labcore.errors import LabError
from labcore.profiles import lab_profiles
from seed.lab import read_seed_record
from seed.options import PopulationOptions
from seed.population import generate_population
from simulator.authserver.apply import apply_profiles
from simulator.replay.alerts import alert_expectation
from simulator.replay.engine import replay
from simulator.replay.model import ScenarioRun
from simulator.replay.target import GatewayTarget, extra_target, lab_target
from simulator.scenarios import Bindings, Scenario, bindings_for, lab_library
from simulator.stack.extra_gateway import extra_gateway, modes_all

Say = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


@dataclass
class LibraryReplay:
    """One pass over the chosen scenarios against one gateway."""

    target: str
    controls: dict[str, str]
    runs: list[ScenarioRun] = field(default_factory=list)
    # where C01-C05 were enforced (simulator/authserver/placement.py); the clients whose
    # issuance policy the placement switched on in Keycloak
    enforce_at: str = "gateway"
    issuance_clients: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.runs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "gateway": self.target,
            "controls": dict(sorted(self.controls.items())),
            "enforce_at": self.enforce_at,
            "issuance_clients": list(self.issuance_clients),
            "runs": [r.to_dict() for r in self.runs],
        }


def common_family(options: PopulationOptions) -> str:
    """The most frequent family name of the seeded population (regenerated, no server)."""
    names: Counter[str] = Counter()
    for record in generate_population(options).records():
        for name in record.patient.get("name", [])[:1]:
            if name.get("family"):
                names[str(name["family"])] += 1
    if not names:
        raise LabError("the seeded population has no family names", "run `fhirlab seed`")
    return names.most_common(1)[0][0]


def seeded(cfg: LabConfig) -> tuple[PopulationOptions, int | None]:
    """The seeded population's options, and how many of its patients have a portal login."""
    record = read_seed_record(cfg)
    if record is None:
        raise LabError(f"the lab at {cfg.home} is not seeded", "run `fhirlab seed` first")
    options = PopulationOptions.from_mapping(record["options"])
    share = record.get("users_share")
    if share is None:
        raise LabError("the lab was seeded without users", "run `fhirlab seed` (with users)")
    return options, round(float(share) * options.patients)


def select(library: Mapping[str, Scenario], names: list[str] | None) -> list[Scenario]:
    unknown = [n for n in names or () if n not in library]
    if unknown:
        raise LabError(
            f"unknown scenario(s): {', '.join(unknown)}", f"choose from {', '.join(library)}"
        )
    return [library[n] for n in names] if names else list(library.values())


def gateway_controls(http: httpx.Client, base_url: str) -> dict[str, str]:
    """The control modes a gateway reports; a clear error when it does not answer."""
    health_url = base_url.removesuffix("/fhir") + "/_gateway/health"
    try:
        http.get(f"{base_url}/metadata", timeout=10).raise_for_status()
        health = http.get(health_url, timeout=10)
    except httpx.HTTPError as exc:
        raise LabError(
            f"the gateway at {base_url} does not answer ({exc})",
            "start the lab with `fhirlab up`",
        ) from exc
    return dict(health.json().get("controls", {})) if health.status_code == 200 else {}


def bindings(
    scenario: Scenario, cfg: LabConfig, options: PopulationOptions, logins: int | None, family: str
) -> Bindings:
    profile = lab_profiles(cfg.repo, cfg.clients_dir)[scenario.client]
    tenant = scenario.tenant or profile.tenants[0]
    return bindings_for(
        tenant,
        patients=options.patients,
        tenants=options.tenants,
        common_family=family,
        logins=logins,
        rng=random.Random(f"{options.seed}:{scenario.name}"),
    )


@dataclass(frozen=True)
class Population:
    options: PopulationOptions
    logins: int | None
    family: str

    @classmethod
    def of(cls, cfg: LabConfig) -> Population:
        options, logins = seeded(cfg)
        return cls(options, logins, common_family(options))

    def to_dict(self) -> dict[str, Any]:
        return {"population": self.options.to_dict(), "common_family": self.family}


def replay_against(
    cfg: LabConfig,
    scenarios: list[Scenario],
    population: Population,
    target: GatewayTarget,
    controls: Mapping[str, str],
    say: Say = _quiet,
    *,
    judge: bool = True,
) -> LibraryReplay:
    """Replay `scenarios` in order against `target`. Without `judge` the expectations are
    dropped (a baseline run is expected to break them)."""
    result = LibraryReplay(target.name, dict(controls))
    with httpx.Client(timeout=60) as http:
        for i, scenario in enumerate(scenarios, 1):
            say(f"[{target.name}] {i}/{len(scenarios)} {scenario.name}")
            b = bindings(scenario, cfg, population.options, population.logins, population.family)
            run = replay(cfg, scenario, b, http, target=target)
            if not judge:
                run.expectations = []
            result.runs.append(run)
    return result


def prepare(
    cfg: LabConfig, names: list[str] | None = None, library: Path | None = None
) -> tuple[list[Scenario], Population]:
    """The chosen scenarios (default: all), the seeded population, and their clients applied."""
    chosen = select(lab_library(cfg, library), names)
    population = Population.of(cfg)
    apply_profiles(cfg, sorted({s.client for s in chosen}))
    return chosen, population


def lab_gateway(cfg: LabConfig) -> tuple[GatewayTarget, dict[str, str]]:
    """The lab's own gateway as a replay target, and the control modes it reports."""
    with httpx.Client() as http:
        controls = gateway_controls(http, cfg.gateway_base_url)
    return lab_target(cfg, controls), controls


@contextmanager
def extra_gateway_target(
    cfg: LabConfig,
    name: str,
    directory: Path,
    modes: Mapping[str, Mode],
    *,
    rate_limit: bool = True,
) -> Iterator[tuple[GatewayTarget, dict[str, str]]]:
    """An extra gateway with `modes` (over the lab's policy) as a replay target, and the control
    modes it reports; stopped on exit."""
    with extra_gateway(cfg, name, directory, modes, rate_limit=rate_limit) as gw:
        assert gw.policy_file is not None
        with httpx.Client() as http:
            controls = gateway_controls(http, gw.base_url)
        yield extra_target(name, gw.base_url, gw.policy_file, gw.audit_dir), controls


BASELINE_MODES: dict[str, Mode] = {**modes_all(Mode.OFF), "C06": Mode.ENFORCE}


def replay_baseline(
    cfg: LabConfig,
    scenarios: list[Scenario],
    population: Population,
    directory: Path,
    say: Say = _quiet,
) -> LibraryReplay:
    """The same scenarios through an extra gateway with every preventive control off (the token
    is still checked): what the clients reach when nothing but a valid token stands in the way.
    The audit and its detectors (C06, which refuse nothing) stay on: what detection alone sees."""
    with extra_gateway_target(cfg, "controls-off", directory, BASELINE_MODES, rate_limit=False) as (
        target,
        controls,
    ):
        return replay_against(cfg, scenarios, population, target, controls, say, judge=False)


def judge_alerts(judged: LibraryReplay, baseline: LibraryReplay, library: list[Scenario]) -> None:
    """Each scenario's expected alerts must have fired in the baseline pass, where its behaviour
    ran unhindered (with the controls on it may be refused before it is anomalous at all); the
    result joins the judged run's expectations."""
    by_name = {s.name: s for s in library}
    off = {r.scenario: r for r in baseline.runs}
    for run in judged.runs:
        scenario, base = by_name.get(run.scenario), off.get(run.scenario)
        if scenario is None or base is None or not base.alerts_checked:
            continue
        expectation = alert_expectation(scenario.alerts, base.alerts)
        if expectation is not None:
            run.expectations.append(expectation)

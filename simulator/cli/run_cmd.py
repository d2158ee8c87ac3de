"""`fhirlab run [SCENARIO...]`: replay scenarios once against the running, seeded lab."""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.table import Table

from seed.lab import read_seed_record
from seed.options import PopulationOptions
from seed.population import generate_population
from simulator.authserver.apply import apply_profiles
from simulator.authserver.profiles import load_profiles
from simulator.cli.console import err, out
from simulator.replay import ScenarioRun, replay
from simulator.scenarios import Bindings, Scenario, bindings_for, load_library
from simulator.stack.config import LabConfig, load_config
from simulator.stack.errors import LabError

EXIT_EXPECTATION_FAILED = 3


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


def seeded_population(cfg: LabConfig) -> tuple[PopulationOptions, int | None]:
    """The seeded population's options, and how many of its patients have a portal login."""
    record = read_seed_record(cfg)
    if record is None:
        raise LabError(f"the lab at {cfg.home} is not seeded", "run `fhirlab seed` first")
    options = PopulationOptions.from_mapping(record["options"])
    share = record.get("users_share")
    if share is None:
        raise LabError("the lab was seeded without users", "run `fhirlab seed` (with users)")
    logins = round(float(share) * options.patients)
    return options, logins


def _check_up(cfg: LabConfig, http: httpx.Client) -> None:
    try:
        http.get(f"{cfg.gateway_base_url}/metadata", timeout=10).raise_for_status()
    except httpx.HTTPError as exc:
        raise LabError(
            f"the gateway at {cfg.gateway_base_url} does not answer ({exc})",
            "start the lab with `fhirlab up`",
        ) from exc


def _select(library: dict[str, Scenario], names: list[str] | None) -> list[Scenario]:
    unknown = [n for n in names or () if n not in library]
    if unknown:
        raise LabError(
            f"unknown scenario(s): {', '.join(unknown)}", f"choose from {', '.join(library)}"
        )
    return [library[n] for n in names] if names else list(library.values())


def replay_table(runs: list[ScenarioRun]) -> Table:
    table = Table(title="scenario replay")
    for column in ("scenario", "expectations", "caught"):
        table.add_column(column)
    for column in ("patients", "exposure s"):
        table.add_column(column, justify="right")
    for r in runs:
        bad = r.failed
        verdict = (
            f"[green]{len(r.expectations)} ok[/]"
            if not bad
            else f"[red]{len(bad)} failed[/]: " + ", ".join(f"{e.control}" for e in bad)
        )
        window = r.exposure.seconds
        table.add_row(
            r.scenario,
            verdict,
            " ".join(r.caught) or "-",
            str(len(r.blast_patients)),
            "until revoked" if window is None else f"{window:.0f}",
        )
    return table


def _write(results: Path, runs: list[ScenarioRun], meta: dict[str, Any]) -> Path:
    folder = results / time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "runs.json"
    payload = {**meta, "runs": [r.to_dict() for r in runs]}
    path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return path


def run(
    scenarios: Annotated[
        list[str] | None, typer.Argument(help="scenario names (default: the whole library)")
    ] = None,
    results: Annotated[Path, typer.Option(file_okay=False, help="results directory")] = Path(
        "results"
    ),
    library: Annotated[
        Path | None,
        typer.Option(file_okay=False, help="scenario directory (default: the repository's)"),
    ] = None,
) -> None:
    """Replay scenarios once against the running, seeded lab and check their expectations.

    The gateway's controls are whatever it runs with (`fhirlab up --controls ...` switches them);
    the results record them as the gateway reports them."""
    cfg = load_config()
    runs, meta = replay_library(cfg, scenarios, library)
    out.print(replay_table(runs))
    err.print(f"written {_write(results, runs, meta)}")
    if any(not r.ok for r in runs):
        raise typer.Exit(EXIT_EXPECTATION_FAILED)


def replay_library(
    cfg: LabConfig, names: list[str] | None = None, library: Path | None = None
) -> tuple[list[ScenarioRun], dict[str, Any]]:
    """Replay the chosen scenarios (default: all) once; the runs and what they ran against."""
    chosen = _select(load_library(library), names)
    options, logins = seeded_population(cfg)
    family = common_family(options)
    runs: list[ScenarioRun] = []
    with httpx.Client(timeout=60) as http:
        _check_up(cfg, http)
        health = http.get(cfg.gateway_base_url.removesuffix("/fhir") + "/_gateway/health")
        controls = health.json().get("controls", {}) if health.status_code == 200 else {}
        apply_profiles(cfg, sorted({s.client for s in chosen}))
        for scenario in chosen:
            err.print(f"replaying {scenario.name}")
            runs.append(
                replay(cfg, scenario, _bindings(scenario, cfg, options, logins, family), http)
            )
    meta = {"controls": controls, "population": options.to_dict(), "common_family": family}
    return runs, meta


def _bindings(
    scenario: Scenario, cfg: LabConfig, options: PopulationOptions, logins: int | None, family: str
) -> Bindings:
    profile = load_profiles(cfg.repo / "keycloak" / "clients")[scenario.client]
    tenant = scenario.tenant or profile.tenants[0]
    return bindings_for(
        tenant,
        patients=options.patients,
        tenants=options.tenants,
        common_family=family,
        logins=logins,
        rng=random.Random(f"{options.seed}:{scenario.name}"),
    )

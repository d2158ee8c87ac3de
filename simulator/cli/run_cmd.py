"""`fhirlab run [SCENARIO...]`: replay scenarios once against the running, seeded lab, with the
controls on and (for the blast radius) off, and write a results directory with its report."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from gateway.policy import POLICY_FILE, load_policy
from labcore.config import LabConfig, load_config
from simulator.authserver.apply import own_profiles_restored
from simulator.authserver.placement import (
    SHARED_CONTROLS,
    Placement,
    gateway_modes,
    parse_placement,
    placed,
)
from simulator.cli.console import err, out
from simulator.cli.own_config import (
    ClientsDir,
    OwnConfig,
    PolicyFile,
    ScenariosDir,
    with_own_config,
)
from simulator.replay import ScenarioRun
from simulator.replay.library import (
    LibraryReplay,
    Population,
    extra_gateway_target,
    judge_alerts,
    lab_gateway,
    prepare,
    replay_against,
    replay_baseline,
)
from simulator.replay.summary import BlastRow, blast_radius
from simulator.results import ResultsDirectory, write_results
from simulator.results.junit import junit_for_results
from simulator.stack.gateway_policy import parse_controls

EXIT_EXPECTATION_FAILED = 3

JunitFile = Annotated[
    Path | None,
    typer.Option(
        "--junit",
        dir_okay=False,
        help="also write the expectations as JUnit XML to this file (one test case per "
        "scenario and expected control), for CI",
    ),
]


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


def _window(seconds: float | None) -> str:
    return "until revoked" if seconds is None else f"{seconds:.0f}"


def blast_table(rows: list[BlastRow]) -> Table:
    table = Table(title="blast radius: controls on vs off")
    table.add_column("scenario")
    table.add_column("caught by")
    for column in ("patients on", "off", "resources on", "off ", "exposure s on", " off"):
        table.add_column(column, justify="right")
    for row in rows:
        off = row.off
        table.add_row(
            row.scenario,
            " ".join(row.caught) or "-",
            str(row.on.patients),
            str(off.patients) if off else "-",
            str(row.on.resources),
            str(off.resources) if off else "-",
            _window(row.on.exposure_s),
            _window(off.exposure_s) if off else "-",
        )
    return table


def replay_with_baseline(
    cfg: LabConfig,
    run_dir: Path,
    names: list[str] | None = None,
    *,
    baseline: bool = True,
    controls: str | None = None,
    enforce_at: Placement = Placement.GATEWAY,
    own_gateway: bool = False,
) -> tuple[LibraryReplay, LibraryReplay | None, Population]:
    """The scenarios against the lab's gateway (or, with `controls`, a placement that switches
    its controls, or `own_gateway` for your policy or clients, an extra gateway with those modes
    over `cfg`'s policy), with Keycloak's issuance policy as `enforce_at` places it; then
    against a controls-off gateway (and Keycloak as the profiles ship)."""

    def say(message: str) -> None:
        err.print(escape(message))

    chosen, population = prepare(cfg, names)
    modes = gateway_modes(enforce_at)
    if modes is None and own_gateway:
        modes = {}  # the policy's own modes, in a gateway that knows your files
    if controls is not None:  # the user's switches over the placement's
        modes = {**(modes or {}), **parse_controls(controls)}
    policy = load_policy(cfg.gateway_policy or POLICY_FILE)
    with placed(cfg, enforce_at, policy) as issuance_clients:
        if issuance_clients:
            say(f"issuance policy on in Keycloak for {len(issuance_clients)} clients")
        if modes is None:
            target, reported = lab_gateway(cfg)
            judged = replay_against(cfg, chosen, population, target, reported, say)
        else:
            directory = run_dir / "gateway-controls"
            with extra_gateway_target(cfg, "controls-set", directory, modes) as (target, reported):
                judged = replay_against(cfg, chosen, population, target, reported, say)
    judged.enforce_at, judged.issuance_clients = enforce_at.value, issuance_clients
    if enforce_at is not Placement.GATEWAY:
        # the scenarios' expectations on C01-C05 describe the lab as shipped (the gateway
        # enforcing): under another placement the verdicts are the result, not a failure
        for run in judged.runs:
            run.expectations = [e for e in run.expectations if e.control not in SHARED_CONTROLS]
    off = None
    if baseline:
        off = replay_baseline(cfg, chosen, population, run_dir / "gateway-baseline", say)
        judge_alerts(judged, off, chosen)
    return judged, off, population


def run(
    scenarios: Annotated[
        list[str] | None, typer.Argument(help="scenario names (default: the whole library)")
    ] = None,
    results: Annotated[Path, typer.Option(file_okay=False, help="results directory")] = Path(
        "results"
    ),
    scenario_dir: ScenariosDir = None,
    clients: ClientsDir = None,
    policy: PolicyFile = None,
    controls: Annotated[
        str | None,
        typer.Option(
            help="replay through an extra gateway with these controls switched over the lab's "
            "policy, e.g. C05=off,C08=monitor or all=off (default: the lab's gateway as it runs)"
        ),
    ] = None,
    baseline: Annotated[
        bool,
        typer.Option(help="also replay with every control off, for the blast radius on vs off"),
    ] = True,
    junit: JunitFile = None,
    enforce_at: Annotated[
        str,
        typer.Option(
            "--enforce-at",
            help="where C01-C05 are enforced: gateway (as shipped), as (Keycloak's issuance "
            "policy for the operational AI clients, the gateway's C01-C05 off) or both",
        ),
    ] = "gateway",
) -> None:
    """Replay scenarios once against the running, seeded lab and check their expectations.

    Exit 3 when an expectation fails. The results directory gets results.json, report.md and
    report.html."""
    own = OwnConfig(scenario_dir, clients, policy)
    cfg = with_own_config(load_config(), own)
    started = time.time()
    folder = ResultsDirectory.new(results, started, None if cfg.external else cfg.audit_dir)
    placement = parse_placement(enforce_at)
    with own_profiles_restored(cfg):
        judged, off, population = replay_with_baseline(
            cfg,
            folder.path,
            scenarios,
            baseline=baseline,
            controls=controls,
            enforce_at=placement,
            own_gateway=own.needs_own_gateway,
        )
    out.print(replay_table(judged.runs))
    out.print(blast_table(blast_radius(judged.runs, off.runs if off else None)))
    written = write_results(
        folder,
        cfg,
        started,
        command="run",
        replay=judged,
        baseline=off,
        population=population.to_dict(),
    )
    err.print(f"results written to {written}")
    if junit is not None:
        err.print(f"junit     {junit_for_results(written, junit)}")
    if not judged.ok:
        raise typer.Exit(EXIT_EXPECTATION_FAILED)

"""`fhirlab load`: the scenario library under Locust load, through one gateway per configuration
of the controls matrix in interleaved rounds, against the running, seeded lab
(docs/explanation/load.md)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from gateway.policy import POLICY_FILE, load_policy
from labcore.config import load_config
from simulator.authserver.apply import own_profiles_restored
from simulator.authserver.placement import gateway_modes, parse_placement, placed
from simulator.cli.console import err, out
from simulator.cli.own_config import (
    ClientsDir,
    OwnConfig,
    PolicyFile,
    ScenariosDir,
    with_own_config,
)
from simulator.load.matrix import MATRIX_NAMES, parse_matrix, with_controls_off
from simulator.load.progress import RichProgress
from simulator.load.rounds import DEFAULT_ROUNDS
from simulator.load.runner import LOAD_FILE, LoadOptions, run_matrix
from simulator.load.table import load_table
from simulator.load.web_ui import serve_ui, ui_options
from simulator.results import ResultsDirectory

TABLE_WIDTH = 100  # the end table's columns, unsqueezed even when stdout is not a terminal


def load(
    scenarios: Annotated[
        list[str] | None,
        typer.Argument(help="scenario names (default: every scenario with load enabled)"),
    ] = None,
    matrix: Annotated[
        str | None,
        typer.Option(
            help=f"configurations, comma-separated, from {','.join(MATRIX_NAMES)} "
            "(default: all of them but direct, HAPI FHIR with no gateway)"
        ),
    ] = None,
    noise_floor: Annotated[
        bool,
        typer.Option(
            help="with off and another configuration, also run off-2, a second gateway "
            "identical to off: the run's noise floor (an A/A pair) beside every cost"
        ),
    ] = True,
    seconds: Annotated[
        float, typer.Option(help="measured time per configuration, all rounds together")
    ] = 10.0,
    rounds: Annotated[
        int | None,
        typer.Option(
            help="interleaved rounds: each gives every configuration seconds/rounds, in a "
            f"rotated order (default: {DEFAULT_ROUNDS} for more than one configuration, fewer "
            "for short --seconds; 1: one configuration after the other)"
        ),
    ] = None,
    warmup: Annotated[
        float,
        typer.Option(help="seconds of unmeasured load on the first configuration (0: none)"),
    ] = 2.0,
    interleave: Annotated[
        str | None,
        typer.Option(
            help="how a round's configurations share it: 'slices' (one after the other, each "
            "alone: throughput) or 'requests' (all at once, each request to one drawn at "
            "random: latency, drift shared) (default: requests with --pace, else slices)"
        ),
    ] = None,
    order_seed: Annotated[
        int | None,
        typer.Option(
            help="seed that shuffles the rounds' orders (default: drawn; load.json records it)"
        ),
    ] = None,
    users: Annotated[
        int | None,
        typer.Option(help="virtual users (default: one per scenario weight share)"),
    ] = None,
    spawn_rate: Annotated[
        float | None, typer.Option(help="users started per second (default: all at once)")
    ] = None,
    workers: Annotated[
        int, typer.Option(help="Locust worker processes (0: one local process)")
    ] = 0,
    pace: Annotated[
        float,
        typer.Option(help="requests per second per user (0: back to back, no think time)"),
    ] = 0.0,
    rate_limit: Annotated[
        bool, typer.Option(help="keep the gateway's rate limiter on (refusals count as denied)")
    ] = False,
    read_only: Annotated[bool, typer.Option(help="leave out steps that write")] = False,
    results: Annotated[Path, typer.Option(file_okay=False, help="results directory")] = Path(
        "results"
    ),
    scenario_dir: ScenariosDir = None,
    clients: ClientsDir = None,
    policy: PolicyFile = None,
    enforce_at: Annotated[
        str,
        typer.Option(
            help="where C01-C05 are enforced: gateway (as shipped), as (Keycloak's issuance "
            "policy on, the gateway's C01-C05 off in every configuration) or both"
        ),
    ] = "gateway",
    ui: Annotated[
        bool,
        typer.Option(
            help="serve Locust's web UI on 127.0.0.1 with the scenario users instead of a timed "
            "run: start, stop and change the users there against the lab's gateway (or the one "
            "configuration --matrix names); Ctrl-C writes the results"
        ),
    ] = False,
    ui_port: Annotated[int, typer.Option(help="the web UI's port on 127.0.0.1")] = 8089,
) -> None:
    """Run the scenario library under Locust load through one extra gateway per configuration
    (off, each run-time control alone, all), in interleaved rounds, and compare throughput and
    latency with `off`; or, with --ui, serve Locust's web UI."""
    own = OwnConfig(scenario_dir, clients, policy)
    placement = parse_placement(enforce_at)
    if ui:
        options = ui_options(
            matrix, ui_port, workers=workers, enforce_at=placement, scenarios=scenarios,
            pace=pace, read_only=read_only, rate_limit=rate_limit,
            own_gateway=own.needs_own_gateway,
        )  # fmt: skip
        cfg = with_own_config(load_config(), own)
        session = serve_ui(cfg, options, results, lambda message: err.print(escape(message)))
        err.print(f"written {session.path}: {session.requests} requests")
        return
    configs = parse_matrix(matrix, noise_floor=noise_floor)
    switched = gateway_modes(placement)  # what the placement switches off at the gateway
    if switched:
        configs = with_controls_off(configs, tuple(switched))
    options = LoadOptions(
        seconds=seconds,
        users=users,
        spawn_rate=spawn_rate,
        workers=workers,
        pace=pace,
        matrix=tuple(configs),
        scenarios=tuple(scenarios) if scenarios else None,
        rate_limit=rate_limit,
        read_only=read_only,
        rounds=rounds,
        warmup=warmup,
        order_seed=order_seed,
        interleave=interleave,
        enforce_at=placement.value,
    )
    cfg = with_own_config(load_config(), own)
    run_dir = ResultsDirectory.new(results, time.time()).path
    gateway_policy = load_policy(cfg.gateway_policy or POLICY_FILE)
    with (
        own_profiles_restored(cfg),
        placed(cfg, placement, gateway_policy) as issuance_clients,
        RichProgress(err) as progress,
    ):
        if issuance_clients:
            err.print(f"issuance policy on in Keycloak for {len(issuance_clients)} clients")
        result = run_matrix(cfg, options, run_dir, progress)
    wide = Console(file=out.file, width=max(out.width, TABLE_WIDTH))
    wide.print(load_table(result))
    err.print(f"written {run_dir / LOAD_FILE}")

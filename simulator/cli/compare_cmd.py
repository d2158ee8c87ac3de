"""`fhirlab compare A B`: two results directories, or two configurations replayed in one run
(gateway policy files, or directories of client profiles), side by side: verdicts that changed,
blast radius and exposure window deltas, cost deltas with their intervals. Writes compare.json,
compare.md and compare.html; `--fail-on regression` exits 3 when B is worse than A."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from labcore.config import LabConfig, load_config
from labcore.errors import LabError
from simulator.authserver.apply import own_profiles_restored
from simulator.cli.console import err, out
from simulator.cli.lab_cmd import lab_load_options
from simulator.cli.own_config import (
    ClientsDir,
    OwnConfig,
    PolicyFile,
    ScenariosDir,
    with_own_config,
)
from simulator.cli.run_cmd import EXIT_EXPECTATION_FAILED, replay_with_baseline
from simulator.compare.diff import Comparison, compare_documents
from simulator.compare.report import write_comparison
from simulator.compare.sides import RESULTS_FILE, ConfigSide, ResultsSide, Side, resolve
from simulator.load import RichProgress, run_matrix
from simulator.load.matrix import AA, OFF, configuration, policy_configuration
from simulator.load.rounds import REQUESTS
from simulator.load.runner import LOAD_FILE
from simulator.results import ResultsDirectory, write_results

FAIL_ON = ("never", "regression")


def _side_config(cfg: LabConfig, side: ConfigSide) -> LabConfig:
    """The lab's configuration (with the command's own files) and this side's file over it."""
    return with_own_config(cfg, OwnConfig(clients=side.clients, policy=side.policy))


def _replay_side(
    cfg: LabConfig, side: ConfigSide, names: list[str] | None, directory: Path
) -> ResultsSide:
    """Replay the scenarios with this side's configuration; its results directory is
    `directory` (results.json and its own report)."""
    err.print(f"[bold]{side.label}[/]        {side.what}")
    started = time.time()
    directory.mkdir(parents=True)
    folder = ResultsDirectory(directory)
    with own_profiles_restored(cfg):
        judged, _, population = replay_with_baseline(
            cfg, directory, names, baseline=False, own_gateway=True
        )
    write_results(
        folder, cfg, started, command="compare", replay=judged, population=population.to_dict()
    )
    document = json.loads((directory / RESULTS_FILE).read_text("utf-8"))
    return ResultsSide(side.label, directory, document)


def measure_pair(
    cfg: LabConfig,
    policies: list[Path],
    seconds: float,
    folder: Path,
    names: list[str] | None,
) -> dict[str, Any]:
    """The two policies under the lab's paced load in one run, beside `off` and its A/A twin;
    B's added latency over A per request kind, with its interval and how it reads against the
    run's noise floor. The run's own load.json is written in `folder`."""
    options = lab_load_options(seconds, names)
    pair = (policy_configuration("A", policies[0]), policy_configuration("B", policies[1]))
    options = replace(options, matrix=(configuration(OFF), configuration(AA), *pair))
    err.print(f"load      A and B under the lab's paced load, {seconds:g} s per configuration")
    result = run_matrix(cfg, options, folder, RichProgress(err))
    by_name = {c.name: c for c in result.configs}
    floor = result.noise_floor()
    interleaved = result.interleave == REQUESTS
    return {
        "b_over_a": by_name["B"].cost_against(by_name["A"], floor, interleaved),
        "noise_floor": {kind: c.to_dict() for kind, c in (floor or {}).items()},
        "load": LOAD_FILE,  # beside compare.json
    }


def _names(sides: list[Side], chosen: list[str] | None) -> list[str] | None:
    """The scenarios to replay: those named, else those a results side ran, else all."""
    if chosen:
        return chosen
    for side in sides:
        if isinstance(side, ResultsSide):
            return [r["scenario"] for r in (side.document.get("replay") or {}).get("runs", [])]
    return None


def _window(seconds: float | None) -> str:
    return "until revoked" if seconds is None else f"{seconds:.0f}"


def summary_table(comparison: Comparison) -> Table:
    table = Table(title=f"compare {comparison.label_a} → {comparison.label_b}")
    for column in ("scenario", "verdicts changed", "patients", "resources", "exposure s"):
        table.add_column(column)
    changed = {v.scenario for v in comparison.verdicts}
    for r in comparison.reach:
        moved = r.patients_delta or r.resources_delta or r.exposure_grew or r.exposure_shrank
        if r.scenario not in changed and not moved:
            continue
        verdicts = [
            f"[{'red' if v.regression else 'green' if v.improvement else 'yellow'}]"
            f"{v.control} {v.a}→{v.b}[/]"
            for v in comparison.verdicts
            if v.scenario == r.scenario
        ]
        table.add_row(
            r.scenario,
            " ".join(verdicts) or "-",
            f"{r.patients_a} → {r.patients_b}",
            f"{r.resources_a} → {r.resources_b}",
            f"{_window(r.exposure_a_s)} → {_window(r.exposure_b_s)}",
        )
    return table


def compare(
    a: Annotated[
        str,
        typer.Argument(
            metavar="A",
            help="A: a results directory (or a folder of them: the newest), a gateway policy "
            "file, or a directory of client profiles",
        ),
    ],
    b: Annotated[str, typer.Argument(metavar="B", help="B: the same kinds as A")],
    scenario: Annotated[
        list[str] | None,
        typer.Option(
            "--scenario",
            metavar="NAME",
            help="replay only this scenario when a side is a configuration (repeatable; "
            "default: the scenarios of a results side, else the whole library)",
        ),
    ] = None,
    results: Annotated[
        Path, typer.Option(file_okay=False, help="where compare/<time>/ is written")
    ] = Path("results"),
    fail_on: Annotated[
        str,
        typer.Option(
            help="regression: exit 3 when B is worse than A on security (a control held in A "
            "is violated in B, an expectation met in A fails, more patients reached, a longer "
            "exposure window); never: report only"
        ),
    ] = "never",
    load_seconds: Annotated[
        float,
        typer.Option(
            min=0,
            help="with two policies: seconds of load per configuration (off, off-2, A, B) in one "
            "interleaved run, for B's cost over A with its interval (0: no load run)",
        ),
    ] = 0.0,
    scenario_dir: ScenariosDir = None,
    clients: ClientsDir = None,
    policy: PolicyFile = None,
) -> None:
    """Compare two runs, or two configurations replayed now, and write the diff report
    (compare.json, compare.md, compare.html)."""
    if fail_on not in FAIL_ON:
        raise LabError(f"--fail-on {fail_on!r} is not a choice", f"use one of {', '.join(FAIL_ON)}")
    sides = [resolve("A", a), resolve("B", b)]
    policies = [s.policy for s in sides if isinstance(s, ConfigSide) and s.policy is not None]
    if load_seconds > 0 and len(policies) != len(sides):
        raise LabError(
            "--load-seconds measures two policies against each other in one run",
            "give two gateway policy files as A and B, or leave --load-seconds out",
        )
    started = time.time()
    configs: dict[str, LabConfig] = {}
    if any(isinstance(s, ConfigSide) for s in sides):
        cfg = with_own_config(load_config(), OwnConfig(scenario_dir, clients, policy))
        for side in sides:  # every file checked before anything runs
            if isinstance(side, ConfigSide):
                configs[side.label] = _side_config(cfg, side)
    folder = ResultsDirectory.new(results / "compare", started).path
    names = _names(sides, scenario)
    read: dict[str, ResultsSide] = {}
    for side in sides:
        if isinstance(side, ConfigSide):
            read[side.label] = _replay_side(configs[side.label], side, names, folder / side.label)
        else:
            read[side.label] = side
    comparison = compare_documents(read["A"].document, read["B"].document, "A", "B")
    if load_seconds > 0:
        base = with_own_config(load_config(), OwnConfig(scenario_dir, clients, policy))
        comparison.measured = measure_pair(base, policies, load_seconds, folder, names)
    described: dict[str, dict[str, Any]] = {
        s.label: {"what": s.what, "results": str(read[s.label].path)} for s in sides
    }
    write_comparison(comparison, folder, described)
    out.print(summary_table(comparison))
    for item in comparison.regressions:
        out.print(f"[red]regression[/] {item}")
    if not comparison.changed:
        out.print("no difference between A and B")
    err.print(f"comparison written to {folder} (report: {folder / 'compare.md'})")
    if fail_on == "regression" and comparison.regressions:
        raise typer.Exit(EXIT_EXPECTATION_FAILED)

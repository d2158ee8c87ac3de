"""`fhirlab exercise list | start N | reset N | check N`: training exercises (docs/exercises/).

`start` copies the files the exercise lets the trainee change into a workspace under the lab
directory, from the exercise's misconfiguration; `check` replays the exercise's scenarios against
those files (through a gateway started with them) and says which goals are met and which are not,
with what the run showed. Exit 0 when every goal is met, 3 when one is not, 1 when the workspace
breaks the exercise's rules or a file has a mistake.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from labcore.config import LabConfig, load_config
from labcore.errors import LabError
from simulator.authserver.apply import own_profiles_restored
from simulator.cli.console import err, out
from simulator.cli.own_config import OwnConfig, with_own_config
from simulator.cli.run_cmd import EXIT_EXPECTATION_FAILED, replay_with_baseline
from simulator.exercises.goals import GoalResult, judge_goals
from simulator.exercises.model import Exercise, exercise, load_catalogue
from simulator.exercises.workspace import (
    CLIENTS,
    POLICY,
    SCENARIOS,
    changes_outside,
    check_library,
    start,
    workspace,
)
from simulator.results import ResultsDirectory, write_results

app = typer.Typer(
    help="Training exercises: a misconfigured vendor to fix (docs/exercises/).",
    no_args_is_help=True,
)
LAST_CHECK = "last-check.json"
Number = Annotated[int, typer.Argument(help="the exercise's number (fhirlab exercise list)")]


def _status(cfg: LabConfig, ex: Exercise) -> str:
    ws = workspace(cfg, ex)
    if not ws.exists():
        return "not started"
    try:
        last = json.loads((ws / LAST_CHECK).read_text())
    except (OSError, ValueError):
        return "started"
    return "[green]passed[/]" if last.get("passed") else "[yellow]not yet[/]"


@app.command("list")
def list_cmd() -> None:
    """Every exercise: its family, title, time, and where you are with it."""
    cfg = load_config()
    table = Table(title="exercises (docs/exercises/)")
    for column in ("#", "family", "title", "minutes", "status"):
        table.add_column(column)
    for number, ex in sorted(load_catalogue().items()):
        table.add_row(str(number), ex.family, ex.title, str(ex.minutes), _status(cfg, ex))
    out.print(table)


def _files(ex: Exercise, ws: Path) -> list[str]:
    files = [f"{ws / CLIENTS / c}.yaml" for c in ex.may_change.clients]
    if ex.may_change.policy:
        files.append(str(ws / POLICY))
    for name, fields in ex.may_change.scenario_fields.items():
        files.append(f"{ws / SCENARIOS / name}.yaml (only: {', '.join(fields)})")
    return files


def _brief(ex: Exercise, ws: Path) -> None:
    out.print(f"[bold]Exercise {ex.number}: {escape(ex.title)}[/] ({ex.family}, ~{ex.minutes} min)")
    out.print(escape(ex.story.strip()))
    out.print(f"[bold]Goal:[/] {escape(ex.goal.strip())}")
    out.print("[bold]You may change:[/]")
    for path in _files(ex, ws):
        out.print(f"  {escape(path)}")
    out.print(
        f"When done: [bold]fhirlab exercise check {ex.number}[/]  (docs/exercises/{ex.name}.md)"
    )


@app.command("start")
def start_cmd(number: Number) -> None:
    """Create the exercise's workspace (kept if it exists) and say what to do."""
    cfg = load_config()
    ex = exercise(number)
    ws, written = start(cfg, ex)
    if not written:
        err.print(
            f"workspace {ws} exists: your changes are kept "
            f"(`fhirlab exercise reset {number}` starts over)"
        )
    _brief(ex, ws)


@app.command("reset")
def reset_cmd(number: Number) -> None:
    """Put the workspace's files back as the exercise starts (earlier checks' results stay)."""
    cfg = load_config()
    ex = exercise(number)
    ws, _ = start(cfg, ex, reset=True)
    err.print(f"workspace {ws} reset")
    _brief(ex, ws)


def goals_table(results: list[GoalResult]) -> Table:
    table = Table(title="goals")
    for column in ("", "goal", "what the run showed"):
        table.add_column(column)
    for r in results:
        mark = "[green]✓[/]" if r.ok else "[red]✗[/]"
        table.add_row(mark, escape(r.goal), escape(r.evidence))
    return table


@app.command("check")
def check_cmd(number: Number) -> None:
    """Replay the exercise against your files and say which goals are met."""
    cfg = load_config()
    ex = exercise(number)
    ws = workspace(cfg, ex)
    if not ws.exists():
        raise LabError(
            f"exercise {number} is not started", f"run `fhirlab exercise start {number}`"
        )
    broken = changes_outside(cfg, ex, ws)
    if broken:
        raise LabError(
            f"exercise {number}: the workspace breaks the exercise's rules:\n"
            + "\n".join(f"  {p}" for p in broken),
            f"undo those changes, or `fhirlab exercise reset {number}`",
        )
    library = check_library(cfg, ex, ws, ws / ".check" / SCENARIOS)
    own = OwnConfig(
        scenarios=library,
        clients=ws / CLIENTS if ex.may_change.clients else None,
        policy=ws / POLICY if ex.may_change.policy else None,
    )
    mine = with_own_config(cfg, own)
    started = time.time()
    folder = ResultsDirectory.new(ws / "results", started)
    with own_profiles_restored(mine):
        judged, _, population = replay_with_baseline(
            mine, folder.path, list(ex.replay), baseline=False, own_gateway=True
        )
    write_results(
        folder, mine, started, command="exercise", replay=judged, population=population.to_dict()
    )
    results = judge_goals(ex.goals, [r.to_dict() for r in judged.runs])
    passed = all(r.ok for r in results)
    record = {
        "exercise": ex.number,
        "passed": passed,
        "checked_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "seconds": round(time.time() - started, 1),
        "results": str(folder.path),
        "goals": [{"goal": r.goal, "ok": r.ok, "evidence": r.evidence} for r in results],
    }
    (ws / LAST_CHECK).write_text(json.dumps(record, indent=2) + "\n")
    out.print(goals_table(results))
    err.print(f"report: {folder.path / 'report.md'}")
    if passed:
        out.print(f"[green bold]pass[/]: exercise {number} done ({ex.title})")
        return
    missing = sum(1 for r in results if not r.ok)
    out.print(f"[red bold]not yet[/]: {missing} of {len(results)} goal(s) unmet")
    for hint in ex.hints:
        out.print(f"  hint: {escape(hint)}")
    raise typer.Exit(EXIT_EXPECTATION_FAILED)

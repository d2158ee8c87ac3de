"""`fhirlab scenarios validate | list`: the scenario library, checked without any server."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from labcore.config import REPO_ROOT, load_config
from labcore.profiles import lab_profiles
from simulator.cli.console import err, out
from simulator.cli.own_config import ClientsDir, OwnConfig, with_own_config
from simulator.scenarios import Verdict, load_library, validate

app = typer.Typer(help="The scenario library (scenarios/*.yaml).")
LIBRARY = REPO_ROOT / "scenarios"


@app.command("validate")
def validate_cmd(
    files: Annotated[
        list[Path] | None, typer.Argument(help="scenario files (default: the whole library)")
    ] = None,
    clients: ClientsDir = None,
) -> None:
    """Check scenario files against the schema and the client profiles they name; every problem
    with file, line and field."""
    paths = files or sorted(LIBRARY.glob("*.yaml"))
    cfg = with_own_config(load_config(), OwnConfig(clients=clients))
    profiles = lab_profiles(cfg.repo, cfg.clients_dir)
    problems = [p for path in paths for p in validate(path, profiles)]
    for problem in problems:
        out.print(str(problem), markup=False, highlight=False, soft_wrap=True)
    if problems:
        err.print(f"[red]{len(problems)} problem(s) in {len(paths)} file(s)[/]")
        raise typer.Exit(1)
    err.print(f"{len(paths)} scenario file(s) valid")


@app.command("list")
def list_cmd() -> None:
    """Each scenario: kind, client, launch and expected verdicts."""
    table = Table(title="scenario library")
    for column in ("scenario", "kind", "client", "launch", "held", "violated"):
        table.add_column(column)
    for scenario in load_library().values():
        expect = scenario.expect
        table.add_row(
            scenario.name,
            scenario.kind.value,
            scenario.client,
            scenario.launch.value,
            " ".join(c for c, v in expect.items() if v is Verdict.HELD),
            " ".join(c for c, v in expect.items() if v is Verdict.VIOLATED),
        )
    out.print(table)

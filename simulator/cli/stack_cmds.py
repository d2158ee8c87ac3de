"""`fhirlab up | down | status`: the native stack's lifecycle."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

import typer
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from gateway.policy import POLICY_FILE
from labcore.config import LabConfig, load_config
from simulator.cli.console import err, out
from simulator.stack import lab as stack
from simulator.stack.gateway_policy import parse_controls, write_policy
from simulator.stack.services import SERVICES

ServicesArg = Annotated[
    list[str] | None,
    typer.Argument(help=f"services to act on (default: all of {', '.join(SERVICES)})"),
]


def start_stack(
    cfg: LabConfig, services: list[str] | None = None, fresh: bool = False
) -> stack.UpResult:
    """Start the stack with a progress display on stderr; shared by `up` and `lab`."""
    with Progress(
        SpinnerColumn(finished_text="[green]✓[/]"),
        TextColumn("[bold]{task.fields[service]:<9}"),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    ) as progress:
        tasks: dict[str, TaskID] = {}

        def tick(service: str, message: str) -> None:
            if service not in tasks:
                tasks[service] = progress.add_task(message, total=1, service=service)
            done = message.startswith("ready")
            progress.update(tasks[service], description=message, completed=1 if done else 0)
            if done:
                progress.stop_task(tasks[service])

        result = stack.up(cfg, services, fresh=fresh, say=progress.console.print, tick=tick)
    for name in result.reused:
        err.print(f"{name:<9} already running")
    for realm in result.realms_created:
        err.print(f"keycloak  realm {realm!r} provisioned")
    return result


def up(
    services: ServicesArg = None,
    fresh: Annotated[bool, typer.Option(help="wipe the servers' data before starting")] = False,
    controls: Annotated[
        str | None,
        typer.Option(help="switch gateway controls, e.g. C05=off,C08=monitor (restarts it)"),
    ] = None,
) -> None:
    """Start Keycloak, HAPI FHIR and the gateway on 127.0.0.1 and wait until they are ready."""
    cfg = load_config()
    if controls is not None:
        base = cfg.gateway_policy or POLICY_FILE
        cfg = replace(cfg, gateway_policy=write_policy(cfg.run_dir, parse_controls(controls), base))
        if stack.down(cfg, ["gateway"]):
            err.print("gateway   stopped, to restart with the new controls")
    start_stack(cfg, services, fresh)
    _print_status(cfg)


def down(services: ServicesArg = None) -> None:
    """Stop the services this lab started (and nothing else)."""
    cfg = load_config()
    stopped = stack.down(cfg, services)
    err.print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")


def status() -> None:
    """Show each service: state, pid, memory, URL. Exit 1 unless all are running."""
    cfg = load_config()
    states = _print_status(cfg)
    if any(s != "running" for s in states):
        raise typer.Exit(1)


def _print_status(cfg: LabConfig) -> list[str]:
    table = Table(title=f"fhirlab stack ({cfg.home})", title_justify="left")
    for column in ("service", "state", "pid", "memory", "uptime", "url"):
        table.add_column(column)
    rows = stack.status(cfg)
    colours = {"running": "green", "unhealthy": "yellow", "stopped": "red"}
    for s in rows:
        table.add_row(
            s.name,
            f"[{colours[s.state]}]{s.state}[/]",
            str(s.pid or ""),
            f"{s.rss_mb:.0f} MiB" if s.rss_mb is not None else "",
            f"{s.uptime_s:.0f} s" if s.uptime_s is not None else "",
            s.url or "",
        )
    out.print(table)
    return [s.state for s in rows]

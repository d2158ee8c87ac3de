"""`fhirlab seed`: load a synthetic population into the running lab, or write it to a directory."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from labcore.config import load_config
from labcore.errors import LabError
from seed.lab import SeedReport, read_seed_record, record_path, seed_lab
from seed.loader import DEFAULT_CONCURRENCY, LoadProgress
from seed.options import OptionsError, PopulationOptions
from seed.population import Summary, generate_population
from seed.users import DEFAULT_SHARE
from seed.writers import write_population
from simulator.cli.console import err, out

DEFAULT_PATIENTS = 100
DEFAULT_SEED = 42


def seed(
    patients: Annotated[
        int, typer.Option(min=0, help="patients to generate (dealt round-robin over tenants)")
    ] = DEFAULT_PATIENTS,
    seed_: Annotated[
        int, typer.Option("--seed", min=0, help="master seed: same seed, same population")
    ] = DEFAULT_SEED,
    tenants: Annotated[
        int, typer.Option(min=1, max=26, help="organisations tenant-a, tenant-b, …")
    ] = 2,
    users: Annotated[
        float,
        typer.Option(min=0.0, max=1.0, help="share of patients who get a portal login (0..1)"),
    ] = DEFAULT_SHARE,
    no_users: Annotated[
        bool, typer.Option("--no-users", help="load FHIR data only, create no Keycloak users")
    ] = False,
    concurrency: Annotated[
        int, typer.Option(min=1, max=64, help="bundles posted to HAPI at the same time")
    ] = DEFAULT_CONCURRENCY,
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out",
            file_okay=False,
            help="write NDJSON + transaction bundles to this directory instead (no servers)",
        ),
    ] = None,
) -> None:
    """Seed the lab: synthetic patients into HAPI FHIR, their logins into Keycloak."""
    try:
        options = PopulationOptions(patients=patients, seed=seed_, tenants=tenants)
    except OptionsError as exc:
        raise typer.BadParameter(str(exc)) from None
    if out_dir is not None:
        _write(options, out_dir)
        return
    cfg = load_config()
    with contextlib.suppress(LabError):  # an unreadable record is rewritten by this run
        _warn_if_overlaying(read_seed_record(cfg), options)
    err.print(
        f"seeding {patients} patients (seed {seed_}, {tenants} tenants) into "
        f"{cfg.hapi_base_url}" + ("" if no_users else f" and {cfg.keycloak_url}")
    )
    with _SeedProgress(patients) as progress:
        report = seed_lab(
            cfg,
            options,
            users_share=None if no_users else users,
            concurrency=concurrency,
            on_load_progress=progress.load,
            on_users_progress=progress.users,
        )
    out.print(_report_table(report))
    err.print(f"recorded in {record_path(cfg)}")


def _warn_if_overlaying(previous: dict[str, Any] | None, options: PopulationOptions) -> None:
    """Loading only adds and overwrites: say so when the lab holds a population this one is not
    a superset of (same options, at least as many patients)."""
    if previous is None:
        return
    before = dict(previous.get("options", {}))
    now = options.to_dict()
    if before.pop("patients", 0) <= now.pop("patients") and before == now:
        return
    old = previous.get("options", {})
    err.print(
        f"[yellow]warning:[/] this lab holds another population ({old.get('patients')} patients, "
        f"seed {old.get('seed')}, {old.get('tenants')} tenants); its resources that this one "
        "does not overwrite stay on the server. For a clean server: `fhirlab down` then "
        "`fhirlab up --fresh`.",
        highlight=False,
    )


class _SeedProgress:
    """Two bars on stderr: bundles into HAPI (patients/s, resources/s), then users into Keycloak."""

    def __init__(self, patients: int) -> None:
        self._progress = Progress(
            TextColumn("[bold]{task.description:<8}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rates]}"),
            TimeElapsedColumn(),
            console=err,
        )
        self._patients = patients
        self._load: TaskID | None = None
        self._users: TaskID | None = None

    def __enter__(self) -> _SeedProgress:
        self._progress.__enter__()
        self._load = self._progress.add_task("patients", total=self._patients, rates="")
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.__exit__(None, None, None)

    def load(self, p: LoadProgress) -> None:
        assert self._load is not None
        retries = f", {p.retries} retries" if p.retries else ""
        rates = f"{p.patients_per_s:.1f} patients/s, {p.resources_per_s:.0f} resources/s{retries}"
        self._progress.update(self._load, completed=p.patients, rates=rates)

    def users(self, done: int, total: int) -> None:
        if self._users is None:
            self._users = self._progress.add_task("users", total=total, rates="")
        self._progress.update(self._users, completed=done)


def _report_table(report: SeedReport) -> Table:
    load = report.load
    table = Table(title="fhirlab seed", title_justify="left", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    opts = report.options
    table.add_row(
        "population", f"{opts.patients} patients, seed {opts.seed}, {opts.tenants} tenants"
    )
    table.add_row("FHIR server", load.server)
    table.add_row("patients loaded", str(load.patients))
    table.add_row("resources loaded", str(load.resources))
    table.add_row("bundles", f"{load.bundles} (concurrency {load.concurrency})")
    table.add_row("load time", f"{load.seconds:.1f} s")
    table.add_row(
        "rate", f"{load.patients_per_s:.1f} patients/s, {load.resources_per_s:.0f} resources/s"
    )
    table.add_row("retries", str(load.retries))
    if report.users is not None:
        u = report.users
        table.add_row(
            "Keycloak users",
            f"{u.patients} patients + {u.practitioners} practitioners "
            f"({u.added} added, {u.skipped} already there) in {u.seconds:.1f} s",
        )
    else:
        table.add_row("Keycloak users", "none (--no-users)")
    if load.population is not None:
        table.add_row("resources by type", _types(load.population))
    table.add_row("total time", f"{report.seconds:.1f} s")
    return table


def _types(summary: Summary) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(summary.resources_by_type.items()))


def _write(options: PopulationOptions, directory: Path) -> None:
    started = time.perf_counter()
    with err.status(f"writing {options.patients} patients to {directory}"):
        result = write_population(generate_population(options), directory)
    seconds = time.perf_counter() - started
    table = Table(title="fhirlab seed --out", title_justify="left", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    rows: list[tuple[str, Any]] = [
        (
            "population",
            f"{options.patients} patients, seed {options.seed}, {options.tenants} tenants",
        ),
        ("directory", str(result.directory)),
        ("resources", result.summary.total_resources),
        ("NDJSON files", len(result.ndjson_files)),
        ("bundles", f"{len(result.bundle_files)} (load in file-name order)"),
        ("resources by type", _types(result.summary)),
        ("time", f"{seconds:.1f} s"),
    ]
    for what, value in rows:
        table.add_row(what, str(value))
    out.print(table)

"""Run the load matrix: for each configuration, an extra gateway with those control modes, the
scenario library under Locust against it for a fixed time, then the measurements.

    result = run_matrix(cfg, LoadOptions(seconds=5, matrix=parse_matrix("off,all")), run_dir)

Writes `<run_dir>/load.json` and `<run_dir>/load/<config>/` (Locust CSVs and logs, the
gateway's policy, log, audit.jsonl and alerts.jsonl); see docs/load.md.
"""

from __future__ import annotations

import json
import os
import random
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from gateway.audit_sink import ALERTS_FILE, AUDIT_FILE
from simulator.authserver.apply import apply_profiles
from simulator.authserver.profiles import load_profiles
from simulator.load.matrix import Configuration, full_matrix
from simulator.load.plan import LoadPlan, build_plan
from simulator.load.processes import START_BUDGET_S, locust_processes, wait_for
from simulator.load.progress import LoadProgress, QuietProgress
from simulator.load.result import ConfigResult, LoadResult
from simulator.load.samples import Samples
from simulator.load.spec import LoadSpec, Population, lab_environment
from simulator.load.stats import summarize
from simulator.replay.library import common_family, seeded
from simulator.scenarios import ParameterError, bindings_for, load_library
from simulator.stack.config import LabConfig
from simulator.stack.errors import LabError
from simulator.stack.extra_gateway import extra_gateway, free_port

MAX_SECONDS = 3600.0
MAX_USERS = 1000
MAX_WORKERS = 16
LOAD_FILE = "load.json"


@dataclass(frozen=True)
class LoadOptions:
    seconds: float = 10.0  # per configuration
    users: int | None = None  # None: the plan's total scenario weight (one user per share)
    spawn_rate: float | None = None  # users started per second; None: all within a second
    workers: int = 0  # 0: one local Locust process; N: a master and N workers
    pace: float = 0.0  # requests per second per user (0: back to back, the closed loop)
    matrix: tuple[Configuration, ...] = field(default_factory=lambda: tuple(full_matrix()))
    scenarios: tuple[str, ...] | None = None  # None: every scenario with load enabled
    library: Path | None = None
    rate_limit: bool = False  # keep the gateway's rate limiter on (off: measure the controls)
    read_only: bool = False

    def check(self) -> None:
        if not 0 < self.seconds <= MAX_SECONDS:
            raise LabError(
                f"--seconds {self.seconds:g} is out of range", f"give 1..{MAX_SECONDS:g}"
            )
        if self.users is not None and not 0 < self.users <= MAX_USERS:
            raise LabError(f"--users {self.users} is out of range", f"give 1..{MAX_USERS}")
        if self.spawn_rate is not None and self.spawn_rate <= 0:
            raise LabError(f"--spawn-rate {self.spawn_rate:g} must be positive", "e.g. 5")
        if not 0 <= self.workers <= MAX_WORKERS:
            raise LabError(f"--workers {self.workers} is out of range", f"give 0..{MAX_WORKERS}")
        if self.pace < 0:
            raise LabError(f"--pace {self.pace:g} must not be negative", "e.g. 5, or 0")
        if not self.matrix:
            raise LabError("the controls matrix is empty", "e.g. --matrix off,all")


def population(cfg: LabConfig) -> Population:
    options, logins = seeded(cfg)
    family = common_family(options)
    return Population(options.patients, options.tenants, options.seed, logins, family)


def check_bindings(cfg: LabConfig, plan: LoadPlan, pop: Population) -> None:
    """Every scenario can draw its parameters from the seeded population (before any load)."""
    profiles = load_profiles(cfg.repo / "keycloak" / "clients")
    for load in plan.scenarios:
        tenant = load.scenario.tenant or profiles[load.scenario.client].tenants[0]
        try:
            bindings_for(
                tenant, patients=pop.patients, tenants=pop.tenants,
                common_family=pop.common_family, logins=pop.logins, rng=random.Random(0),
            )  # fmt: skip
        except ParameterError as exc:
            raise LabError(f"scenario {load.name}: {exc}", "seed more patients") from None


def check_up(cfg: LabConfig) -> None:
    try:
        httpx.get(f"{cfg.gateway_base_url}/metadata", timeout=10).raise_for_status()
    except httpx.HTTPError as exc:
        raise LabError(
            f"the gateway at {cfg.gateway_base_url} does not answer ({exc})",
            "start the lab with `fhirlab up`",
        ) from exc


def tally(path: Path, key: str) -> Counter[str] | None:
    """How often each value of `key` occurs in a JSONL file; None if the file is absent."""
    if not path.exists():
        return None
    counts: Counter[str] = Counter()
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            try:
                item = json.loads(line)
            except ValueError:
                continue
            if isinstance(item, dict):
                counts[str(item.get(key))] += 1
    return counts


def run_configuration(
    cfg: LabConfig,
    plan: LoadPlan,
    pop: Population,
    config: Configuration,
    options: LoadOptions,
    run_dir: Path,
    users: int,
    progress: LoadProgress,
) -> ConfigResult:
    directory = run_dir / "load" / config.name
    directory.mkdir(parents=True, exist_ok=True)
    samples_path = directory / "samples.json"
    with extra_gateway(
        cfg, f"load-{config.name}", directory, dict(config.modes), rate_limit=options.rate_limit
    ) as gateway:
        spec = LoadSpec(
            host=gateway.base_url,
            scenarios=tuple(plan.names),
            library=str(options.library) if options.library else None,
            read_only=options.read_only,
            users=users,
            spawn_rate=options.spawn_rate or float(users),
            seconds=options.seconds,
            workers=options.workers,
            pace=options.pace,
            population=pop,
            csv_prefix=str(directory / "locust"),
            samples_path=str(samples_path),
            master_port=free_port(cfg.host) if options.workers else None,
        )
        spec_path = spec.write(directory / "locust-spec.json")
        env = lab_environment(cfg)
        with locust_processes(spec, spec_path, directory, env) as (main, lines):
            budget = START_BUDGET_S + spec.worker_wait_s + spec.login_budget_s + options.seconds
            code = wait_for(main, lines, budget, progress.update)
        if code != 0 or not samples_path.exists():
            raise LabError(
                f"the Locust process of configuration {config.name!r} failed (exit {code})",
                f"see {directory / 'locust.log'}",
            )
    samples = Samples.from_dict(json.loads(samples_path.read_text(encoding="utf-8")))
    kinds = tally(directory / "audit" / AUDIT_FILE, "kind")
    detectors = tally(directory / "audit" / ALERTS_FILE, "detector")
    return ConfigResult(
        name=config.name,
        controls=config.controls,
        totals=summarize(samples),
        audit_records=None if kinds is None else kinds["request"],
        alerts=None if detectors is None else sum(detectors.values()),
        alert_detectors=dict(sorted((detectors or {}).items())),
        directory=str(directory.relative_to(run_dir)),
    )


def run_matrix(
    cfg: LabConfig,
    options: LoadOptions,
    run_dir: Path,
    progress: LoadProgress | None = None,
) -> LoadResult:
    """Measure every configuration of `options.matrix` under the same load, one after the
    other; write `<run_dir>/load.json` (also after Ctrl-C, with what was measured)."""
    options.check()
    progress = progress or QuietProgress()
    plan = build_plan(
        load_library(options.library),
        list(options.scenarios) if options.scenarios else None,
        read_only=options.read_only,
    )
    check_up(cfg)
    pop = population(cfg)
    check_bindings(cfg, plan, pop)
    apply_profiles(cfg, sorted({s.scenario.client for s in plan.scenarios}))
    users = options.users or plan.total_weight
    if users < len(plan.scenarios):
        progress.note(
            f"[yellow]{users} users for {len(plan.scenarios)} scenarios: Locust gives some "
            "scenarios no user[/]"
        )
    for name, why in plan.left_out:
        progress.note(f"left out: {name} ({why})")
    result = LoadResult(
        started_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        seconds=options.seconds,
        users=users,
        spawn_rate=options.spawn_rate or float(users),
        workers=options.workers,
        pace=options.pace,
        scenarios=[{"name": s.name, "weight": s.weight} for s in plan.scenarios],
        left_out=[{"name": n, "why": why} for n, why in plan.left_out],
        rate_limit=options.rate_limit,
        read_only=options.read_only,
        load_average=[round(os.getloadavg()[0], 2)],
    )
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        for index, config in enumerate(options.matrix, start=1):
            progress.config_started(index, len(options.matrix), config.name, options.seconds)
            done = run_configuration(cfg, plan, pop, config, options, run_dir, users, progress)
            result.configs.append(done)
            t = done.totals
            progress.config_done(
                config.name,
                f"{t.requests} requests  {t.rps or 0:.1f} rps  p50 {t.p50_ms or 0:.3f} ms  "
                f"{t.denied} denied  {t.failures} failed",
            )
    except KeyboardInterrupt:
        result.interrupted = True
        raise
    finally:
        result.load_average.append(round(os.getloadavg()[0], 2))
        write_result(result, run_dir)
    return result


def write_result(result: LoadResult, run_dir: Path) -> Path:
    path = run_dir / LOAD_FILE
    with tempfile.NamedTemporaryFile("w", dir=run_dir, delete=False, suffix=".tmp") as handle:
        json.dump(result.to_dict(), handle, indent=2)
        handle.write("\n")
    Path(handle.name).replace(path)
    return path

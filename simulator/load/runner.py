"""Run the load matrix: an extra gateway per configuration (all started up front), the scenario
library under Locust against them in interleaved rounds (every round gives every configuration a
slice of its time, in a rotated order, `simulator.load.rounds`), then the measurements over each
configuration's slices together.

    result = run_matrix(cfg, LoadOptions(seconds=5, matrix=parse_matrix("off,all")), run_dir)

Writes `<run_dir>/load.json`, `<run_dir>/load/<config>/` (the gateway's policy, log,
audit.jsonl and alerts.jsonl, the configuration's samples, `round-<n>/` with each slice's
Locust CSVs and samples) and `<run_dir>/load/` (Locust's logs, the logins' samples, the
warm-up's gateway and slice); see docs/explanation/load.md.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx

from gateway.recorder import ALERTS_FILE, AUDIT_FILE
from labcore.config import LabConfig
from labcore.errors import LabError
from labcore.profiles import lab_profiles
from simulator.authserver.apply import apply_profiles
from simulator.load import cost
from simulator.load.matrix import Configuration, full_matrix
from simulator.load.plan import LoadPlan, build_plan
from simulator.load.processes import START_BUDGET_S, locust_processes, wait_for
from simulator.load.progress import LoadProgress, QuietProgress
from simulator.load.result import ConfigResult, LoadResult
from simulator.load.rounds import (
    MAX_ROUNDS,
    MIN_SLICE_S,
    REQUESTS,
    SLICES,
    accumulate,
    default_rounds,
    slice_plan,
)
from simulator.load.samples import Samples
from simulator.load.spec import SAMPLES_FILE, LoadSpec, Population, Slice, lab_environment
from simulator.load.stats import summarize
from simulator.replay.library import common_family, seeded
from simulator.scenarios import ParameterError, bindings_for, lab_library
from simulator.stack.extra_gateway import extra_gateway, free_port

MAX_SECONDS = 3600.0
MAX_USERS = 1000
MAX_WORKERS = 16
MAX_WARMUP_S = 600.0
LOAD_FILE = "load.json"
PARALLEL_STARTS = (os.cpu_count() or 2) + 1  # extra gateways started at the same time
LOGIN_SAMPLES_FILE = "login-samples.json"
WARMUP_DIR = "warmup"


@dataclass(frozen=True)
class LoadOptions:
    seconds: float = 10.0  # per configuration, all its rounds together
    users: int | None = None  # None: the plan's total scenario weight (one user per share)
    spawn_rate: float | None = None  # users started per second; None: all within a second
    workers: int = 0  # 0: one local Locust process; N: a master and N workers
    pace: float = 0.0  # requests per second per user (0: back to back, the closed loop)
    matrix: tuple[Configuration, ...] = field(default_factory=lambda: tuple(full_matrix()))
    scenarios: tuple[str, ...] | None = None  # None: every scenario with load enabled
    library: Path | None = None
    rate_limit: bool = False  # keep the gateway's rate limiter on (off: measure the controls)
    read_only: bool = False
    rounds: int | None = None  # interleaved rounds; None: `default_rounds`
    warmup: float = 2.0  # seconds of unmeasured load on the first configuration; 0: none
    order_seed: int | None = None  # shuffles the rounds' orders; None: drawn, and recorded
    # how configurations share a round: "slices" (one after the other, each alone: throughput),
    # "requests" (all at once, each request to one drawn at random: latency); None: "requests"
    # when paced, else "slices"
    interleave: str | None = None
    enforce_at: str = "gateway"  # recorded only: the caller provisions Keycloak and the matrix

    @property
    def resolved_interleave(self) -> str:
        if self.interleave is not None:
            return self.interleave
        return REQUESTS if self.pace > 0 else SLICES

    @property
    def resolved_rounds(self) -> int:
        if self.rounds is not None:
            return self.rounds
        return default_rounds(len(self.matrix), self.seconds)

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
        if self.interleave not in (None, REQUESTS, SLICES):
            raise LabError(
                f"--interleave {self.interleave} is not known", f"give {REQUESTS} or {SLICES}"
            )
        if self.rounds is not None and not 0 < self.rounds <= MAX_ROUNDS:
            raise LabError(f"--rounds {self.rounds} is out of range", f"give 1..{MAX_ROUNDS}")
        if self.seconds / self.resolved_rounds < MIN_SLICE_S:
            raise LabError(
                f"--seconds {self.seconds:g} in {self.resolved_rounds} rounds makes slices of "
                f"{self.seconds / self.resolved_rounds:.2f} s",
                f"give at least {MIN_SLICE_S:g} s per round (more --seconds or fewer --rounds)",
            )
        if not 0 <= self.warmup <= MAX_WARMUP_S:
            raise LabError(
                f"--warmup {self.warmup:g} is out of range", f"give 0..{MAX_WARMUP_S:g} (0: none)"
            )


def population(cfg: LabConfig) -> Population:
    options, logins = seeded(cfg)
    family = common_family(options)
    return Population(options.patients, options.tenants, options.seed, logins, family)


def check_bindings(cfg: LabConfig, plan: LoadPlan, pop: Population) -> None:
    """Every scenario can draw its parameters from the seeded population (before any load)."""
    profiles = lab_profiles(cfg.repo, cfg.clients_dir)
    for load in plan.scenarios:
        tenant = load.scenario.tenant or profiles[load.scenario.client].tenants[0]
        try:
            bindings_for(
                tenant, patients=pop.patients, tenants=pop.tenants,
                common_family=pop.common_family, logins=pop.logins, rng=random.Random(0),
            )  # fmt: skip
        except ParameterError as exc:
            raise LabError(f"scenario {load.name}: {exc}", "seed more patients") from None


def prepared_plan(
    cfg: LabConfig,
    library: Path | None,
    scenarios: Sequence[str] | None,
    read_only: bool,
) -> tuple[LoadPlan, Population]:
    """The plan of the chosen scenarios (default: those with load enabled), once the lab
    answers, every scenario can draw its parameters from the seeded population, and their
    clients are provisioned."""
    plan = build_plan(
        lab_library(cfg, library), list(scenarios) if scenarios else None, read_only=read_only
    )
    check_up(cfg)
    pop = population(cfg)
    check_bindings(cfg, plan, pop)
    apply_profiles(cfg, sorted({s.scenario.client for s in plan.scenarios}))
    return plan, pop


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


def read_samples(path: Path) -> Samples | None:
    if not path.exists():
        return None
    return Samples.from_dict(json.loads(path.read_text(encoding="utf-8")))


def round_stats(number: int, samples: Samples) -> dict[str, Any]:
    """One slice of a configuration, summarized (drift shows as a trend over its rounds)."""
    t = summarize(samples)
    return {
        "round": number,
        "requests": t.requests,
        "denied": t.denied,
        "failures": t.failures,
        "window_s": t.window_s,
        "rps": t.rps,
        "p50_ms": t.p50_ms,
        "p99_ms": t.p99_ms,
    }


def configuration_result(
    config: Configuration, slices: Sequence[Slice], logins: Samples, run_dir: Path
) -> ConfigResult | None:
    """A configuration's measured slices together (None if none ran): every sample, the sum of
    the slices' windows as its time, and the users' logins (shared by every configuration) as
    its TOKEN rows beside the renewals in its slices. Writes `load/<config>/samples.json`."""
    directory = run_dir / "load" / config.name
    parts = [
        (piece.round, part)
        for piece in slices
        if piece.config == config.name and piece.round > 0
        for part in [read_samples(Path(piece.directory) / SAMPLES_FILE)]
        if part is not None
    ]
    if not parts:
        return None
    samples = accumulate([part for _, part in parts])
    samples.merge(logins)
    (directory / SAMPLES_FILE).write_text(json.dumps(samples.to_dict()), encoding="utf-8")
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
        by_round=tuple(round_stats(number, part) for number, part in parts),
        slices=tuple(cost.Slice(part.kinds, part.window_s, part.strata) for _, part in parts),
    )


class SliceProgress:
    """Turns the Locust process's progress lines into one progress bar per slice (per group of
    slices run together)."""

    def __init__(
        self, progress: LoadProgress, slices: Sequence[Slice], rounds: int, groups: list[list[int]]
    ) -> None:
        self.progress, self.slices, self.rounds = progress, slices, rounds
        self.groups = {group[0]: group for group in groups}  # first slice -> the group
        self.numbers = {group[0]: n for n, group in enumerate(groups, start=1)}
        self.current = -1
        self.last: dict[str, Any] = {}
        self.started = time.monotonic()
        self.startup_s: float | None = None  # Locust's start to the first slice (logins)

    def label(self, index: int) -> str:
        group = self.groups.get(index, [index])
        piece = self.slices[index]
        if piece.round == 0:
            return f"warm-up ({piece.config})"
        if len(group) > 1:
            return f"round {piece.round}/{self.rounds}: {len(group)} configurations interleaved"
        return f"{piece.config:<4} round {piece.round}/{self.rounds}"

    def __call__(self, status: dict[str, Any]) -> None:
        index = int(status.get("slice", -1))
        if index != self.current and index in self.groups:
            if self.startup_s is None:
                self.startup_s = round(time.monotonic() - self.started, 3)
            self.finish()
            self.current = index
            seconds = sum(self.slices[i].seconds for i in self.groups[index])
            self.progress.config_started(
                self.numbers[index], len(self.groups), self.label(index), seconds
            )
        if index == self.current and status.get("phase") == "done":
            self.last = status  # the slice's counts once its last request was answered
            return
        self.progress.update(status)

    def finish(self) -> None:
        if self.current < 0:
            return
        s = self.last
        self.progress.config_done(
            self.label(self.current),
            f"{s.get('requests', 0)} requests  {s.get('rps', 0.0):.1f} rps  "
            f"{s.get('failures', 0)} failed",
        )
        self.last = {}


def plan_slices(
    options: LoadOptions, rounds: int, hosts: dict[str, str], run_dir: Path, seed: int | None
) -> list[Slice]:
    """The slices in the order run; with the requests interleaved, a round's slices form one
    group (run together), its Locust CSVs in `load/round-<n>/`."""
    names = [config.name for config in options.matrix]
    mixed = options.resolved_interleave == REQUESTS and len(names) > 1
    slices = []
    for piece in slice_plan(names, rounds, options.seconds, options.warmup, seed):
        group, csv_directory = -1, ""
        if piece.measured:
            directory = run_dir / "load" / piece.config / f"round-{piece.round}"
            host = hosts[piece.config]
            if mixed:
                group = piece.round
                csv_directory = str(run_dir / "load" / f"round-{piece.round}")
        else:
            directory, host = run_dir / "load" / WARMUP_DIR, hosts[WARMUP_DIR]
        slices.append(
            Slice(
                piece.config, piece.round, piece.seconds, host, str(directory),
                group=group, csv_directory=csv_directory,
            )
        )  # fmt: skip
    return slices


def start_gateways(
    gateways: ExitStack,
    cfg: LabConfig,
    wanted: list[tuple[Path, Configuration]],
    options: LoadOptions,
) -> list[str]:
    """Extra gateways with each configuration's modes, their files in its directory, started
    a few side by side (a start is mostly imports) and stopped with `gateways`; their FHIR
    bases, in order (HAPI FHIR's own for `direct`). If one fails to start, the others are
    stopped and its error raised."""
    managers = {
        index: extra_gateway(
            replace(cfg, gateway_policy=Path(config.policy)) if config.policy else cfg,
            f"load-{directory.name}", directory, dict(config.modes),
            rate_limit=options.rate_limit, server_args=config.server_args,
        )
        for index, (directory, config) in enumerate(wanted)
        if not config.direct
    }  # fmt: skip
    # a few at a time: all at once, on two cores, each start waited for the others' imports
    with ThreadPoolExecutor(max_workers=max(1, min(len(managers), PARALLEL_STARTS))) as pool:
        futures = {index: pool.submit(manager.__enter__) for index, manager in managers.items()}
    bases: list[str] = []
    error: BaseException | None = None
    for index in range(len(wanted)):
        if index not in managers:
            bases.append(cfg.hapi_base_url)
            continue
        try:
            started = futures[index].result()
        except BaseException as exc:  # re-raised below, once the started ones are registered
            error = error or exc
            continue
        gateways.push(managers[index])
        bases.append(started.base_url)
    if error is not None:
        raise error
    return bases


def run_rounds(
    cfg: LabConfig,
    plan: LoadPlan,
    pop: Population,
    options: LoadOptions,
    run_dir: Path,
    users: int,
    result: LoadResult,
    progress: LoadProgress,
) -> None:
    """Start every configuration's gateway (and the warm-up's), run the slices in one Locust
    process, stop the gateways gracefully (their audit logs complete), then summarize each
    configuration over its slices; also after Ctrl-C, with the slices that ran."""
    load_dir = run_dir / "load"
    load_dir.mkdir(parents=True, exist_ok=True)
    code: int | None = None
    slices: list[Slice] = []
    ticker: SliceProgress | None = None
    try:
        with ExitStack() as gateways:
            hosts: dict[str, str] = {}
            progress.note(f"starting {len(options.matrix)} gateways")
            wanted = [(load_dir / config.name, config) for config in options.matrix]
            if options.warmup > 0:
                wanted.append((load_dir / WARMUP_DIR, options.matrix[0]))
            bases = start_gateways(gateways, cfg, wanted, options)
            for (directory, _), base in zip(wanted, bases, strict=True):
                hosts[directory.name] = base
            slices = plan_slices(options, result.rounds, hosts, run_dir, result.order_seed)
            result.order = [
                [s.config for s in slices if s.round == number]
                for number in range(1, result.rounds + 1)
            ]
            spec = LoadSpec(
                slices=tuple(slices),
                scenarios=tuple(plan.names),
                library=str(options.library) if options.library else None,
                read_only=options.read_only,
                users=users,
                spawn_rate=options.spawn_rate or float(users),
                workers=options.workers,
                pace=options.pace,
                population=pop,
                login_samples_path=str(load_dir / LOGIN_SAMPLES_FILE),
                master_port=free_port(cfg.host) if options.workers else None,
            )
            spec_path = spec.write(load_dir / "locust-spec.json")
            ticker = SliceProgress(progress, slices, result.rounds, spec.groups())
            budget = (
                START_BUDGET_S + spec.worker_wait_s + spec.login_budget_s + spec.seconds
                + len(slices) * (spec.drain_budget_s + 1.0)
            )  # fmt: skip
            with locust_processes(spec, spec_path, load_dir, lab_environment(cfg)) as (
                main,
                lines,
            ):
                code = wait_for(main, lines, budget, ticker)
            ticker.finish()
    finally:
        if ticker is not None:
            result.startup_s = ticker.startup_s
        logins = read_samples(load_dir / LOGIN_SAMPLES_FILE) or Samples()
        for config in options.matrix:
            done = configuration_result(config, slices, logins, run_dir)
            if done is not None:
                result.configs.append(done)
    if code != 0:
        raise LabError(f"the Locust process failed (exit {code})", f"see {load_dir / 'locust.log'}")


def run_matrix(
    cfg: LabConfig,
    options: LoadOptions,
    run_dir: Path,
    progress: LoadProgress | None = None,
) -> LoadResult:
    """Measure every configuration of `options.matrix` under the same load, in interleaved
    rounds; write `<run_dir>/load.json` (also after Ctrl-C, with what was measured)."""
    options.check()
    progress = progress or QuietProgress()
    plan, pop = prepared_plan(cfg, options.library, options.scenarios, options.read_only)
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
        rounds=options.resolved_rounds,
        warmup_s=options.warmup,
        interleave=options.resolved_interleave,
        enforce_at=options.enforce_at,
        order_seed=options.order_seed
        if options.order_seed is not None
        else secrets.randbelow(2**31),
    )
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        run_rounds(cfg, plan, pop, options, run_dir, users, result, progress)
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

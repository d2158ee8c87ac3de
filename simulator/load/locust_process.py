"""The Locust process of one configuration: `python -m simulator.load.locust_process SPEC ROLE`.

ROLE is `local` (one process runs the users), `master` (waits for `workers` worker processes,
runs none itself) or `worker`. Locust runs here and only here: gevent monkey-patches the standard
library when Locust is imported, so the command that orchestrates the run stays a plain process.

The local or master process writes Locust's CSVs (`<prefix>_stats.csv`, `_stats_history.csv`,
`_failures.csv`, `_exceptions.csv`), the raw samples (JSON, `simulator.load.samples`) and one
progress line per second on stdout (JSON: users, requests, failures, rps). Workers send their
raw samples to the master with each report. SIGTERM stops the run early, keeping what was
measured.
"""

# ruff: noqa: E402  (gevent must patch the standard library before anything else is imported)
from gevent import monkey

monkey.patch_all()

import csv
import json
import logging
import signal
import sys
import time
from pathlib import Path
from typing import Any

import gevent
from gevent.event import Event
from locust.env import Environment
from locust.log import setup_logging
from locust.runners import MasterRunner, Runner
from locust.stats import PERCENTILES_TO_REPORT, StatsCSV, StatsCSVFileWriter

from simulator.authserver.profiles import load_profiles
from simulator.load.plan import build_plan
from simulator.load.samples import TOKEN, Samples
from simulator.load.spec import LoadSpec
from simulator.load.users import user_classes
from simulator.scenarios import load_library
from simulator.stack.config import load_config

REPORT_KEY = "fhirlab_samples"
GO_MESSAGE = "fhirlab_go"
PROGRESS_INTERVAL_S = 1.0
FINAL_REPORT_WAIT_S = 10.0

log = logging.getLogger("fhirlab.load")


def environment(spec: LoadSpec, go: Event) -> Environment:
    cfg = load_config()
    library = load_library(Path(spec.library) if spec.library else None)
    plan = build_plan(library, list(spec.scenarios), read_only=spec.read_only)
    profiles = load_profiles(cfg.repo / "keycloak" / "clients")
    classes = user_classes(plan, cfg, profiles, spec.population, spec.host, go, spec.pace)
    return Environment(user_classes=list(classes), host=spec.host, stop_timeout=0)


def record_samples(env: Environment, samples: Samples) -> None:
    """Every request event becomes a raw sample (exact float milliseconds)."""

    def on_request(
        request_type: str,
        name: str,
        response_time: float,
        exception: BaseException | None = None,
        context: dict[str, Any] | None = None,
        start_time: float | None = None,
        **_: Any,
    ) -> None:
        outcome = (context or {}).get("outcome") or ("failed" if exception else "ok")
        if exception is not None:
            outcome = "failed"
        control = (context or {}).get("control")
        samples.add(request_type, name, outcome, response_time, start_time, control)

    env.events.request.add_listener(on_request)


def run_worker(spec: LoadSpec, env: Environment, samples: Samples, go: Event) -> None:
    def on_report(client_id: str, data: dict[str, Any]) -> None:
        data[REPORT_KEY] = samples.drain().to_dict()

    env.events.report_to_master.add_listener(on_report)
    runner = env.create_worker_runner("127.0.0.1", int(spec.master_port or 0))
    runner.register_message(GO_MESSAGE, lambda **_: go.set())
    runner.greenlet.join()


def tokens_reported(runner: Runner) -> int:
    """Token acquisitions so far (ok, denied or failed), all users together."""
    return sum(e.num_requests for e in runner.stats.entries.values() if e.method == TOKEN)


def wait_for_tokens(runner: Runner, spec: LoadSpec, stop: Event) -> None:
    """Until every user has tried to get its token, or the login budget is spent."""
    deadline = time.monotonic() + spec.login_budget_s
    while tokens_reported(runner) < spec.users and time.monotonic() < deadline:
        if stop.is_set():
            return
        gevent.sleep(0.1)
    if tokens_reported(runner) < spec.users:
        log.warning(
            "%d of %d users got no token within %.0f s; the load starts without them",
            spec.users - tokens_reported(runner),
            spec.users,
            spec.login_budget_s,
        )


def wait_for_workers(runner: MasterRunner, spec: LoadSpec, stop: Event) -> None:
    deadline = time.monotonic() + spec.worker_wait_s
    while len(runner.clients.ready) < spec.workers:
        if stop.is_set():
            return
        if time.monotonic() > deadline:
            raise SystemExit(
                f"only {len(runner.clients.ready)} of {spec.workers} Locust workers connected "
                f"within {spec.worker_wait_s:.0f} s"
            )
        gevent.sleep(0.2)


def progress(runner: Runner, started: list[float]) -> None:
    """One JSON line per second on stdout; `elapsed` counts from the start of the measured
    time (every user has its token)."""
    while True:
        total = runner.stats.total
        line = {
            "phase": "load" if started else "login",
            "elapsed": round(time.monotonic() - started[0], 1) if started else 0.0,
            "tokens": tokens_reported(runner),
            "users": runner.user_count,
            "requests": total.num_requests,
            "failures": total.num_failures,
            "rps": round(total.current_rps, 1),
        }
        print(json.dumps(line), flush=True)
        gevent.sleep(PROGRESS_INTERVAL_S)


def final_reports(reported: dict[str, float], since: float, workers: int) -> None:
    """After the users stopped, wait until every worker has reported once more: that report
    carries its last samples."""
    deadline = time.monotonic() + FINAL_REPORT_WAIT_S
    while time.monotonic() < deadline:
        if len(reported) >= workers and all(at > since for at in reported.values()):
            return
        gevent.sleep(0.2)
    log.warning("some workers sent no final report; their last samples are missing")


def run_main(spec: LoadSpec, role: str, env: Environment, samples: Samples, go: Event) -> None:
    stop = Event()
    gevent.signal_handler(signal.SIGTERM, stop.set)
    reported: dict[str, float] = {}
    runner: Runner
    if role == "master":
        runner = env.create_master_runner("127.0.0.1", int(spec.master_port or 0))

        def on_worker_report(client_id: str, data: dict[str, Any]) -> None:
            if REPORT_KEY in data:
                samples.merge(Samples.from_dict(data[REPORT_KEY]))
                reported[client_id] = time.monotonic()

        env.events.worker_report.add_listener(on_worker_report)
        wait_for_workers(runner, spec, stop)
    else:
        runner = env.create_local_runner()
    writer = StatsCSVFileWriter(env, PERCENTILES_TO_REPORT, spec.csv_prefix, full_history=True)
    started: list[float] = []
    greenlets = [gevent.spawn(writer.stats_writer), gevent.spawn(progress, runner, started)]
    if not stop.is_set():
        runner.start(spec.users, spawn_rate=spec.spawn_rate)
        wait_for_tokens(runner, spec, stop)
        started.append(time.monotonic())
        go.set()
        if isinstance(runner, MasterRunner):
            runner.send_message(GO_MESSAGE)
        stop.wait(timeout=spec.seconds)
    runner.stop()
    stopped_at = time.monotonic()  # the workers' users have stopped: their next report is last
    if isinstance(runner, MasterRunner):
        final_reports(reported, stopped_at, spec.workers)
    runner.quit()
    gevent.killall(greenlets)
    writer.close_files()
    write_final_csvs(env, spec.csv_prefix)
    out = Path(spec.samples_path)
    out.write_text(json.dumps(samples.to_dict()), encoding="utf-8")


def write_final_csvs(env: Environment, prefix: str) -> None:
    """The final totals (Locust's writer refreshes these files once a second while running)."""

    final = StatsCSV(env, PERCENTILES_TO_REPORT)
    for suffix, write in (
        ("_stats.csv", final.requests_csv),
        ("_failures.csv", final.failures_csv),
        ("_exceptions.csv", final.exceptions_csv),
    ):
        with open(prefix + suffix, "w", newline="") as handle:
            write(csv.writer(handle))


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[1] not in ("local", "master", "worker"):
        print("usage: python -m simulator.load.locust_process SPEC local|master|worker")
        return 2
    spec = LoadSpec.read(Path(argv[0]))
    setup_logging("INFO")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    go = Event()
    env = environment(spec, go)
    samples = Samples()
    record_samples(env, samples)
    if argv[1] == "worker":
        run_worker(spec, env, samples, go)
    else:
        run_main(spec, argv[1], env, samples, go)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

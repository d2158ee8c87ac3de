"""The Locust process of a load run: `python -m simulator.load.locust_process SPEC ROLE`.

ROLE is `local` (one process runs the users), `master` (waits for `workers` worker processes,
runs none itself) or `worker`. Locust runs here and only here: gevent monkey-patches the standard
library when Locust is imported, so the command that orchestrates the run stays a plain process.

The users log in once; then the local or master process runs the spec's slices in order (each a
configuration's gateway for some seconds, `simulator.load.rounds`): it points the users at the
slice's gateway, lets them run, pauses them and waits for the requests still in flight, so that
every request belongs to the slice it was sent in. Per slice it writes Locust's CSVs
(`<directory>/locust_stats.csv`, `_stats_history.csv`, `_failures.csv`, `_exceptions.csv`) and
the raw samples (`<directory>/samples.json`, `simulator.load.samples`); the logins' samples go
to the spec's `login_samples_path`. One progress line per second on stdout (JSON: phase, slice,
users, requests, failures, rps). Workers get the slices by message and send their raw samples,
per slice, to the master with each report. SIGTERM ends the run early, keeping what was measured.
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

from labcore.config import load_config
from labcore.profiles import lab_profiles
from simulator.load.plan import build_plan
from simulator.load.samples import TOKEN, Samples
from simulator.load.spec import LoadSpec
from simulator.load.users import SliceControl, user_classes
from simulator.scenarios import lab_library

REPORT_KEY = "fhirlab_samples"
INFLIGHT_KEY = "fhirlab_inflight"
SLICE_MESSAGE = "fhirlab_slice"
PAUSE_MESSAGE = "fhirlab_pause"
LOGINS = -1  # the slice index of the samples taken before the first slice
PROGRESS_INTERVAL_S = 1.0
STOPPING_DRAIN_S = 5.0  # the wait for requests in flight once asked to stop

log = logging.getLogger("fhirlab.load")


class SliceSamples:
    """The raw samples of every slice, by slice index (LOGINS: before the first)."""

    def __init__(self) -> None:
        self.by_slice: dict[int, Samples] = {}

    def of(self, index: int) -> Samples:
        return self.by_slice.setdefault(index, Samples())

    def drain(self) -> dict[str, Any]:
        """Everything gathered so far, as a report to the master, leaving none."""
        taken = {str(i): s.drain().to_dict() for i, s in self.by_slice.items() if s.series}
        return taken

    def merge(self, report: dict[str, Any]) -> None:
        for index, data in report.items():
            self.of(int(index)).merge(Samples.from_dict(data))


def environment(spec: LoadSpec, control: SliceControl) -> Environment:
    cfg = load_config()
    library = lab_library(cfg, Path(spec.library) if spec.library else None)
    plan = build_plan(library, list(spec.scenarios), read_only=spec.read_only)
    profiles = lab_profiles(cfg.repo, cfg.clients_dir)
    classes = user_classes(plan, cfg, profiles, spec.population, control, spec.pace)
    return Environment(user_classes=list(classes), host=spec.host, stop_timeout=0)


def record_samples(env: Environment, samples: SliceSamples, control: SliceControl) -> None:
    """Every request event becomes a raw sample (exact float milliseconds) of the slice it was
    sent in."""

    def on_request(
        request_type: str,
        name: str,
        response_time: float,
        exception: BaseException | None = None,
        context: dict[str, Any] | None = None,
        start_time: float | None = None,
        **_: Any,
    ) -> None:
        context = context or {}
        outcome = context.get("outcome") or ("failed" if exception else "ok")
        if exception is not None:
            outcome = "failed"
        index = int(context.get("slice", control.index))
        samples.of(index).add(
            request_type,
            name,
            outcome,
            response_time,
            start_time,
            context.get("control"),
            context.get("kind"),
        )

    env.events.request.add_listener(on_request)


def run_worker(
    spec: LoadSpec, env: Environment, samples: SliceSamples, control: SliceControl
) -> None:
    def on_report(client_id: str, data: dict[str, Any]) -> None:
        data[REPORT_KEY] = samples.drain()
        data[INFLIGHT_KEY] = control.inflight

    env.events.report_to_master.add_listener(on_report)
    runner = env.create_worker_runner("127.0.0.1", int(spec.master_port or 0))
    runner.register_message(
        SLICE_MESSAGE,
        lambda msg, **_: control.begin([(int(i), str(h)) for i, h in msg.data["choices"]]),
    )
    runner.register_message(PAUSE_MESSAGE, lambda **_: control.pause())
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


class Status:
    """What the progress lines say: the phase (login, load, drain), the slice and its start."""

    def __init__(self) -> None:
        self.phase, self.index, self.since = "login", LOGINS, time.monotonic()

    def set(self, phase: str, index: int) -> None:
        self.phase, self.index, self.since = phase, index, time.monotonic()


def report(runner: Runner, status: Status, rps: float | None = None) -> None:
    """One progress line on stdout: the phase, the slice, Locust's counts since it started;
    `elapsed` counts from the start of the slice."""
    total = runner.stats.total
    line = {
        "phase": status.phase,
        "slice": status.index,
        "elapsed": round(time.monotonic() - status.since, 1) if status.index >= 0 else 0.0,
        "tokens": tokens_reported(runner),
        "users": runner.user_count,
        "requests": total.num_requests,
        "failures": total.num_failures,
        "rps": round(total.current_rps if rps is None else rps, 1),
    }
    print(json.dumps(line), flush=True)


def progress(runner: Runner, status: Status) -> None:
    while True:
        report(runner, status)
        gevent.sleep(PROGRESS_INTERVAL_S)


class Reports:
    """The master's view of its workers' reports: when each last reported, with how many
    requests in flight."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.last: dict[str, tuple[float, int]] = {}

    def settled(self, since: float) -> bool:
        return len(self.last) >= self.workers and all(
            at > since and inflight == 0 for at, inflight in self.last.values()
        )


def drain(control: SliceControl, reports: Reports | None, budget_s: float) -> None:
    """After a pause, until no request is in flight (for a master: every worker has reported
    since, with none in flight: that report carries its last samples of the slice)."""
    since = time.monotonic()
    deadline = since + budget_s
    while time.monotonic() < deadline:
        if reports.settled(since) if reports else control.inflight == 0:
            return
        gevent.sleep(0.05 if reports is None else 0.2)
    log.warning("requests still in flight %.0f s after the slice; going on", budget_s)


def run_slices(
    spec: LoadSpec,
    env: Environment,
    runner: Runner,
    control: SliceControl,
    reports: Reports | None,
    status: Status,
    stop: Event,
) -> None:
    """Each slice in turn, or each group of slices run together: Locust's statistics start
    from zero, the users send to the slice's gateway (to one of the group's, drawn per request)
    for its seconds (the group's together), then pause; the CSVs are written."""
    for group in spec.groups():
        if stop.is_set():
            return
        pieces = [spec.slices[index] for index in group]
        index, piece = group[0], pieces[0]
        for each in pieces:
            Path(each.directory).mkdir(parents=True, exist_ok=True)
        Path(piece.csv_prefix).parent.mkdir(parents=True, exist_ok=True)
        seconds = sum(each.seconds for each in pieces)
        choices = [[i, each.host] for i, each in zip(group, pieces, strict=True)]
        runner.stats.reset_all()
        writer = StatsCSVFileWriter(env, PERCENTILES_TO_REPORT, piece.csv_prefix, full_history=True)
        writing = gevent.spawn(writer.stats_writer)
        status.set("load", index)
        if isinstance(runner, MasterRunner):
            runner.send_message(SLICE_MESSAGE, {"choices": choices})
        else:
            control.begin([(i, host) for i, host in choices])
        stop.wait(timeout=seconds)
        if isinstance(runner, MasterRunner):
            runner.send_message(PAUSE_MESSAGE)
        else:
            control.pause()
        status.set("drain", index)
        drain(control, reports, STOPPING_DRAIN_S if stop.is_set() else spec.drain_budget_s)
        status.set("done", index)
        report(runner, status, runner.stats.total.num_requests / seconds)
        gevent.kill(writing)
        writer.close_files()
        write_final_csvs(env, piece.csv_prefix)


def run_main(
    spec: LoadSpec, role: str, env: Environment, samples: SliceSamples, control: SliceControl
) -> None:
    stop = Event()
    gevent.signal_handler(signal.SIGTERM, stop.set)
    reports: Reports | None = None
    runner: Runner
    if role == "master":
        runner = env.create_master_runner("127.0.0.1", int(spec.master_port or 0))
        reports = Reports(spec.workers)

        def on_worker_report(client_id: str, data: dict[str, Any]) -> None:
            if REPORT_KEY in data:
                samples.merge(data[REPORT_KEY])
                reports.last[client_id] = (time.monotonic(), int(data.get(INFLIGHT_KEY, 0)))

        env.events.worker_report.add_listener(on_worker_report)
        wait_for_workers(runner, spec, stop)
    else:
        runner = env.create_local_runner()
    status = Status()
    ticker = gevent.spawn(progress, runner, status)
    if not stop.is_set():
        runner.start(spec.users, spawn_rate=spec.spawn_rate)
        wait_for_tokens(runner, spec, stop)
        run_slices(spec, env, runner, control, reports, status, stop)
    runner.stop()
    runner.quit()
    gevent.kill(ticker)
    write_samples(spec, samples)


def write_samples(spec: LoadSpec, samples: SliceSamples) -> None:
    """Every slice's samples (the slices that ran), and the logins'."""
    for index, piece in enumerate(spec.slices):
        if index in samples.by_slice:
            piece.samples_path.write_text(
                json.dumps(samples.by_slice[index].to_dict()), encoding="utf-8"
            )
    logins = samples.by_slice.get(LOGINS, Samples())
    Path(spec.login_samples_path).write_text(json.dumps(logins.to_dict()), encoding="utf-8")


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
    control = SliceControl(spec.host)
    env = environment(spec, control)
    samples = SliceSamples()
    record_samples(env, samples, control)
    if argv[1] == "worker":
        run_worker(spec, env, samples, control)
    else:
        run_main(spec, argv[1], env, samples, control)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

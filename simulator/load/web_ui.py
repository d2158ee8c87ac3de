"""`fhirlab load --ui`: Locust's own web UI with the scenario users, on 127.0.0.1, so a trainee
watches the controls under load while they change them.

The users send to one gateway: the lab's own (as `fhirlab up --controls` last started it), or an
extra gateway with one configuration of the matrix. Nothing runs until the UI starts a swarm;
Ctrl-C (or SIGTERM) ends the session and the results directory is written: Locust's CSVs and raw
samples in `load/ui/`, and `ui.json` with the session's totals per request, as `load.json` gives
them per configuration.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from labcore.config import LabConfig
from labcore.errors import LabError
from simulator.load.matrix import Configuration
from simulator.load.runner import prepared_plan, read_samples
from simulator.load.spec import SAMPLES_FILE, LoadSpec, Slice, lab_environment
from simulator.load.stats import summarize
from simulator.replay.library import gateway_controls
from simulator.stack.extra_gateway import extra_gateway

UI_HOST = "127.0.0.1"
UI_FILE = "ui.json"
MODULE = "simulator.load.locust_ui_process"
START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 60.0

Say = Callable[[str], None]


@dataclass(frozen=True)
class UiOptions:
    port: int = 8089
    scenarios: tuple[str, ...] | None = None
    pace: float = 0.0
    read_only: bool = False
    config: Configuration | None = None  # None: the lab's own gateway
    rate_limit: bool = False


def check_port(port: int) -> None:
    if not 1 <= port <= 65535:
        raise LabError(f"--ui-port {port} is not a port", "give 1-65535, e.g. 8089")
    with socket.socket() as sock:
        try:
            sock.bind((UI_HOST, port))
        except OSError:
            raise LabError(
                f"port {port} on {UI_HOST} is busy", "give another with --ui-port"
            ) from None


def _wait_for_ui(proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-800:]
            raise LabError(f"Locust's web UI exited at start (exit {proc.returncode})", tail)
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise LabError(f"Locust's web UI did not answer at {url}", f"see {log}")


def _stop(proc: subprocess.Popen[bytes]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


@contextmanager
def _interrupt_on_sigterm() -> Iterator[None]:
    """SIGTERM ends the session as Ctrl-C does (a service manager's stop, a test's)."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def serve_ui(cfg: LabConfig, options: UiOptions, run_dir: Path, say: Say) -> Path:
    """Serve the UI until Ctrl-C (or the UI's process ends); write the results; `ui.json`."""
    check_port(options.port)
    plan, pop = prepared_plan(cfg, None, options.scenarios, options.read_only)
    ui_dir = run_dir / "load" / "ui"
    ui_dir.mkdir(parents=True, exist_ok=True)
    url = f"http://{UI_HOST}:{options.port}"
    code: int | None = None
    with ExitStack() as stack:
        if options.config is None:
            host = cfg.gateway_base_url
            name = "lab"
        else:
            gateway = stack.enter_context(
                extra_gateway(
                    cfg, f"ui-{options.config.name}", run_dir / "load" / options.config.name,
                    dict(options.config.modes), rate_limit=options.rate_limit,
                )
            )  # fmt: skip
            host, name = gateway.base_url, options.config.name
        with httpx.Client() as http:
            controls = gateway_controls(http, host)
        spec = LoadSpec(
            slices=(Slice(name, 1, 0.0, host, str(ui_dir)),),
            scenarios=tuple(plan.names),
            library=None,
            read_only=options.read_only,
            users=1,  # the UI chooses
            spawn_rate=1.0,
            workers=0,
            population=pop,
            login_samples_path=str(ui_dir / "login-samples.json"),
            pace=options.pace,
        )
        spec_path = spec.write(ui_dir / "locust-spec.json")
        log = ui_dir / "locust.log"
        with log.open("ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", MODULE, str(spec_path), str(options.port)],
                stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **lab_environment(cfg)},
                start_new_session=True,  # Ctrl-C reaches this process, which stops the UI's
            )  # fmt: skip
        try:
            _wait_for_ui(proc, url, log)
            say(f"Locust's web UI: {url} — users of {', '.join(plan.names)} against {host}")
            say("start, stop and change the users there; Ctrl-C here ends the session")
            try:
                with _interrupt_on_sigterm():
                    proc.wait()
            except KeyboardInterrupt:
                say("stopping: the users, then the results")
        finally:
            code = _stop(proc)
    return _write_result(run_dir, ui_dir, name, host, controls, plan.names, code)


def _write_result(
    run_dir: Path,
    ui_dir: Path,
    name: str,
    host: str,
    controls: dict[str, str],
    scenarios: list[str],
    code: int | None,
) -> Path:
    samples = read_samples(ui_dir / SAMPLES_FILE)
    totals = summarize(samples) if samples is not None else None
    document: dict[str, Any] = {
        "mode": "ui",
        "gateway": name,
        "host": host,
        "controls": controls,
        "scenarios": scenarios,
        "locust_exit": code,
        "files": {"csv": "load/ui/locust_stats.csv", "samples": f"load/ui/{SAMPLES_FILE}"},
        "totals": None,
    }
    if totals is not None:
        document["totals"] = {
            "requests": totals.requests,
            "failures": totals.failures,
            "denied": totals.denied,
            "served": totals.served,
            "rps": totals.rps,
            "p50_ms": totals.p50_ms,
            "p95_ms": totals.p95_ms,
            "p99_ms": totals.p99_ms,
            "window_s": totals.window_s,
            "by_request": [r.to_dict() for r in totals.by_request],
        }
    path = run_dir / UI_FILE
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return path

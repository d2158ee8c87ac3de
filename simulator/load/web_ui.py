"""`fhirlab load --ui`: Locust's own web UI with the scenario users, on 127.0.0.1, so a trainee
watches the controls under load while they change them.

The users send to one gateway: the lab's own (as `fhirlab up --controls` last started it), or an
extra gateway: with one configuration of the matrix, with your `--policy` or `--clients`, or with
C01-C05 off for `--enforce-at as`. Nothing runs until the UI starts a swarm; Ctrl-C (or SIGTERM)
ends the session and the results directory is written: Locust's CSVs and raw samples in
`load/ui/`, and `ui.json` with the session's totals per request, as `load.json` gives them per
configuration.
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

from gateway.controls import Mode
from gateway.policy import POLICY_FILE, load_policy
from labcore.config import LabConfig
from labcore.errors import LabError
from simulator.authserver.apply import own_profiles_restored
from simulator.authserver.placement import Placement, gateway_modes, placed
from simulator.load.matrix import Configuration, parse_matrix, with_controls_off
from simulator.load.runner import prepared_plan, read_samples
from simulator.load.spec import SAMPLES_FILE, LoadSpec, Slice, lab_environment
from simulator.load.stats import summarize
from simulator.replay.library import gateway_controls
from simulator.results import ResultsDirectory
from simulator.stack.extra_gateway import extra_gateway

UI_HOST = "127.0.0.1"
UI_FILE = "ui.json"
MODULE = "simulator.load.locust_ui_process"
START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 60.0
OWN = "own"  # the extra gateway's name without a configuration: the policy's own modes

Say = Callable[[str], None]


@dataclass(frozen=True)
class UiOptions:
    port: int = 8089
    scenarios: tuple[str, ...] | None = None
    pace: float = 0.0
    read_only: bool = False
    config: Configuration | None = None  # one configuration of the matrix
    rate_limit: bool = False
    enforce_at: Placement = Placement.GATEWAY
    own_gateway: bool = False  # your policy or clients: the lab's gateway knows neither

    def extra_modes(self) -> tuple[str, dict[str, Mode]] | None:
        """The extra gateway's name and modes over the policy; None: the lab's gateway."""
        switched = gateway_modes(self.enforce_at)  # C01-C05 off where Keycloak enforces them
        if self.config is not None:
            return self.config.name, dict(self.config.modes)
        if switched is not None or self.own_gateway:
            return OWN, dict(switched or {})
        return None


@dataclass(frozen=True)
class UiResult:
    path: Path  # ui.json
    requests: int


def ui_options(
    matrix: str | None,
    port: int,
    *,
    workers: int = 0,
    enforce_at: Placement = Placement.GATEWAY,
    scenarios: list[str] | None = None,
    pace: float = 0.0,
    read_only: bool = False,
    rate_limit: bool = False,
    own_gateway: bool = False,
) -> UiOptions:
    """`--ui`'s options, refused before anything starts: one gateway, one local Locust process,
    a free port on 127.0.0.1."""
    config = None
    if matrix is not None:
        configs = parse_matrix(matrix, noise_floor=False)
        if any(c.direct for c in configs):
            raise LabError(
                f"--ui watches a gateway; --matrix {matrix} names direct (HAPI FHIR, no gateway)",
                "name one gateway configuration, e.g. --matrix all, or none for the lab's own",
            )
        if len(configs) != 1:
            raise LabError(
                f"--ui watches one gateway; --matrix {matrix} names {len(configs)} configurations",
                "name one, e.g. --matrix all, or none for the lab's own gateway",
            )
        switched = gateway_modes(enforce_at)
        if switched:
            configs = with_controls_off(configs, tuple(switched))
            if not configs:
                raise LabError(
                    f"--matrix {matrix} with --enforce-at {enforce_at.value} is off again "
                    "(Keycloak enforces that control instead)",
                    "name another configuration, e.g. --matrix all",
                )
        config = configs[0]
    if workers:
        raise LabError("--ui runs one local Locust process", "leave --workers out")
    check_port(port)
    return UiOptions(
        port=port,
        scenarios=tuple(scenarios) if scenarios else None,
        pace=pace,
        read_only=read_only,
        config=config,
        rate_limit=rate_limit,
        enforce_at=enforce_at,
        own_gateway=own_gateway,
    )


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
    except (subprocess.TimeoutExpired, KeyboardInterrupt):  # a second Ctrl-C: at once
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


def serve_ui(cfg: LabConfig, options: UiOptions, results: Path, say: Say) -> UiResult:
    """Serve the UI until Ctrl-C (or the UI's process ends); write a results directory under
    `results` with `ui.json`. Keycloak gets the lab's profiles back afterwards."""
    check_port(options.port)
    run_dir = ResultsDirectory.new(results, time.time()).path
    policy = load_policy(cfg.gateway_policy or POLICY_FILE)
    with (
        own_profiles_restored(cfg),
        placed(cfg, options.enforce_at, policy) as issuance_clients,
    ):
        if issuance_clients:
            say(f"issuance policy on in Keycloak for {len(issuance_clients)} clients")
        path = _session(cfg, options, run_dir, say)
    totals = json.loads(path.read_text()).get("totals") or {}
    return UiResult(path, int(totals.get("requests", 0)))


def _session(cfg: LabConfig, options: UiOptions, run_dir: Path, say: Say) -> Path:
    plan, pop = prepared_plan(cfg, None, options.scenarios, options.read_only)
    ui_dir = run_dir / "load" / "ui"
    ui_dir.mkdir(parents=True, exist_ok=True)
    url = f"http://{UI_HOST}:{options.port}"
    code: int | None = None
    with ExitStack() as stack:
        extra = options.extra_modes()
        if extra is None:
            host, name = cfg.gateway_base_url, "lab"
        else:
            name, modes = extra
            gateway = stack.enter_context(
                extra_gateway(
                    cfg, f"ui-{name}", run_dir / "load" / name, modes,
                    rate_limit=options.rate_limit,
                )
            )  # fmt: skip
            host = gateway.base_url
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
        served = False  # the UI answered: from then on, a nonzero exit is Locust's failure
        try:
            try:
                with _interrupt_on_sigterm():
                    _wait_for_ui(proc, url, log)
                    served = True
                    say(f"Locust's web UI: {url} — users of {', '.join(plan.names)} against {host}")
                    say("start, stop and change the users there; Ctrl-C here ends the session")
                    proc.wait()
            except KeyboardInterrupt:
                say("stopping: the users, then the results")
        finally:
            code = _stop(proc)
    path = _write_result(run_dir, ui_dir, name, host, controls, plan.names, code, options)
    if served and code != 0:
        raise LabError(f"Locust's web UI process ended with exit {code}", f"see {log}")
    return path


def _write_result(
    run_dir: Path,
    ui_dir: Path,
    name: str,
    host: str,
    controls: dict[str, str],
    scenarios: list[str],
    code: int | None,
    options: UiOptions,
) -> Path:
    samples = read_samples(ui_dir / SAMPLES_FILE)
    totals = summarize(samples) if samples is not None else None
    document: dict[str, Any] = {
        "mode": "ui",
        "gateway": name,
        "host": host,
        "controls": controls,
        "scenarios": scenarios,
        "enforce_at": options.enforce_at.value,
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

"""Background server processes: start, wait until ready, report, stop.

Each service gets a log file and a state file (pid, start time, ports, URLs) under the lab
directory. A state file names a process by pid *and* creation time, so `down` stops only what the
lab started, never an unrelated process that later reused the pid.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
import psutil

from simulator.stack.errors import PortInUse, ReadinessTimeout, ServiceDied

HealthCheck = Callable[[httpx.Response], bool]
# Reads the log of a start that ended in an exit; (cause, fix) when it recognises why.
ExitExplainer = Callable[[str], tuple[str, str] | None]

START_MARK = "=== fhirlab: starting "


def status_ok(response: httpx.Response) -> bool:
    return response.status_code == 200


@dataclass(frozen=True)
class ServiceSpec:
    """How to run one server: its command line and how to tell it is ready."""

    name: str
    command: tuple[str, ...]
    health_url: str
    url: str
    ports: tuple[tuple[str, int], ...]
    cwd: Path | None = None
    # Extra environment for this child only (may hold secrets: kept out of repr and logs).
    env: Mapping[str, str] = field(default_factory=dict, repr=False)
    health_check: HealthCheck = status_ok
    explain_exit: ExitExplainer | None = None


@dataclass(frozen=True)
class ServiceState:
    """What the lab wrote down when it started a service (run/<name>.json)."""

    name: str
    pid: int
    create_time: float
    started_at: float
    url: str
    health_url: str
    ports: list[tuple[str, int]]
    log: str


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    state: str  # running | unhealthy | stopped
    pid: int | None = None
    rss_mb: float | None = None
    url: str | None = None
    uptime_s: float | None = None


def port_owner(port: int) -> str:
    """Describe the process listening on `port`, as well as the OS lets us see it."""
    try:
        for conn in psutil.net_connections(kind="inet"):
            if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN:
                if conn.pid:
                    try:
                        proc = psutil.Process(conn.pid)
                        cmd = " ".join(proc.cmdline())[:80]
                        return f"pid {conn.pid} ({proc.name()}: {cmd})"
                    except psutil.Error:
                        return f"pid {conn.pid}"
                return "a process this user cannot see"
    except psutil.AccessDenied:
        pass
    return "another process"


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def tail(path: Path, lines: int = 30) -> str:
    """The last `lines` lines of a text file ('' if it does not exist)."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            data = fh.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(data.splitlines()[-lines:])


def latest_start(path: Path, limit: int = 1 << 20) -> str:
    """The log of the latest start: what follows the last start mark (within the last `limit`
    bytes; '' if the file does not exist)."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - limit))
            data = fh.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    return data.rpartition(START_MARK)[2]


class ProcessManager:
    """Starts and stops the lab's servers; all bookkeeping lives under `run_dir` and `log_dir`."""

    def __init__(self, run_dir: Path, log_dir: Path, host: str = "127.0.0.1") -> None:
        self.run_dir = run_dir
        self.log_dir = log_dir
        self.host = host
        self._popen: dict[str, subprocess.Popen[bytes]] = {}  # children started by this object

    # ---- bookkeeping ------------------------------------------------------------------
    def state_path(self, name: str) -> Path:
        return self.run_dir / f"{name}.json"

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def read_state(self, name: str) -> ServiceState | None:
        try:
            raw = json.loads(self.state_path(name).read_text())
            raw["ports"] = [tuple(p) for p in raw["ports"]]
            return ServiceState(**raw)
        except (FileNotFoundError, json.JSONDecodeError, TypeError, KeyError):
            return None

    def process(self, state: ServiceState) -> psutil.Process | None:
        """The live process a state file names, or None (exited, or pid reused)."""
        try:
            proc = psutil.Process(state.pid)
            if abs(proc.create_time() - state.create_time) > 1.0:
                return None
            if proc.status() == psutil.STATUS_ZOMBIE:
                return None
            return proc
        except psutil.Error:
            return None

    def known_services(self) -> list[str]:
        if not self.run_dir.is_dir():
            return []
        return sorted(p.stem for p in self.run_dir.glob("*.json"))

    # ---- lifecycle --------------------------------------------------------------------
    def check_ports(self, spec: ServiceSpec, variable: Callable[[str], str] | None = None) -> None:
        for port_name, port in spec.ports:
            if not port_is_free(self.host, port):
                err = PortInUse(port, spec.name, port_owner(port))
                if variable is not None:
                    err.hint = f"stop that process, or set {variable(port_name)} to a free port"
                raise err

    def start(self, spec: ServiceSpec) -> ServiceState:
        """Spawn `spec` in its own session, output appended to its log."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_path(spec.name)
        env = {**os.environ, **spec.env}
        with log_path.open("ab") as log:
            log.write(f"\n{START_MARK}{spec.name} at {time.ctime()} ===\n".encode())
            log.write(("=== " + " ".join(spec.command) + "\n").encode())
            log.flush()
            popen = subprocess.Popen(
                list(spec.command),
                cwd=spec.cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        state = ServiceState(
            name=spec.name,
            pid=popen.pid,
            create_time=psutil.Process(popen.pid).create_time(),
            started_at=time.time(),
            url=spec.url,
            health_url=spec.health_url,
            ports=list(spec.ports),
            log=str(log_path),
        )
        self._popen[spec.name] = popen
        tmp = self.state_path(spec.name).with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(state), indent=2))
        tmp.replace(self.state_path(spec.name))
        return state

    def healthy(self, target: ServiceSpec | ServiceState, check: HealthCheck = status_ok) -> bool:
        try:
            response = httpx.get(target.health_url, timeout=3.0)
        except httpx.HTTPError:
            return False
        return check(response)

    def poll_ready(self, spec: ServiceSpec, state: ServiceState) -> bool:
        """One readiness probe; raises ServiceDied if the process has exited."""
        if self.process(state) is None:
            popen = self._popen.get(spec.name)
            code = popen.poll() if popen is not None else None
            log = Path(state.log)
            explained = spec.explain_exit(latest_start(log)) if spec.explain_exit else None
            raise ServiceDied(spec.name, code, tail(log), state.log, explained)
        return self.healthy(spec, spec.health_check)

    def wait_ready(
        self,
        spec: ServiceSpec,
        state: ServiceState,
        timeout_s: float,
        on_tick: Callable[[float], None] | None = None,
    ) -> float:
        """Block until ready; returns seconds waited."""
        t0 = time.monotonic()
        while True:
            if self.poll_ready(spec, state):
                return time.monotonic() - t0
            waited = time.monotonic() - t0
            if waited > timeout_s:
                raise ReadinessTimeout(
                    f"{spec.name} was not ready after {timeout_s:.0f} s ({spec.health_url})",
                    f"see `fhirlab logs {spec.name}`; raise FHIRLAB_START_TIMEOUT on a slow host",
                )
            if on_tick:
                on_tick(waited)
            time.sleep(0.5)

    def stop(self, name: str, timeout_s: float = 30.0) -> bool:
        """Stop the service the lab started under `name`; True if a process was stopped."""
        state = self.read_state(name)
        if state is None:
            self.state_path(name).unlink(missing_ok=True)
            return False
        proc = self.process(state)
        stopped = False
        if proc is not None:
            group = _group_members(proc)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(state.pid, signal.SIGTERM)
            alive = _wait_gone(group, timeout_s)
            for p in alive:
                with contextlib.suppress(psutil.Error):
                    p.kill()
            _wait_gone(alive, 5)
            stopped = True
        popen = self._popen.pop(name, None)
        if popen is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                popen.wait(timeout=5)
        self.state_path(name).unlink(missing_ok=True)
        return stopped

    def status(self, name: str, check: HealthCheck = status_ok) -> ServiceStatus:
        state = self.read_state(name)
        if state is None:
            return ServiceStatus(name, "stopped")
        proc = self.process(state)
        if proc is None:
            return ServiceStatus(name, "stopped", url=state.url)
        rss = 0
        for p in _group_members(proc):
            with contextlib.suppress(psutil.Error):
                rss += p.memory_info().rss
        healthy = self.healthy(state, check)
        return ServiceStatus(
            name,
            "running" if healthy else "unhealthy",
            pid=state.pid,
            rss_mb=rss / 2**20,
            url=state.url,
            uptime_s=time.time() - state.started_at,
        )


def _running(proc: psutil.Process) -> bool:
    """Alive and not a zombie (a stopped child that its parent has not reaped yet is gone)."""
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _wait_gone(procs: list[psutil.Process], timeout_s: float) -> list[psutil.Process]:
    """Wait until every process has exited (or is a zombie); those still running."""
    deadline = time.monotonic() + timeout_s
    alive = [p for p in procs if _running(p)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = [p for p in alive if _running(p)]
    return alive


def _group_members(proc: psutil.Process) -> list[psutil.Process]:
    members = [proc]
    with contextlib.suppress(psutil.Error):
        members.extend(proc.children(recursive=True))
    return members

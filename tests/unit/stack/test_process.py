"""The process manager's error paths, with real child processes (no servers needed)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from simulator.stack.errors import PortInUse, ReadinessTimeout, ServiceDied
from simulator.stack.process import ProcessManager, ServiceSpec, port_is_free


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def pm(tmp_path: Path) -> ProcessManager:
    return ProcessManager(tmp_path / "run", tmp_path / "logs")


def http_server_spec(port: int, name: str = "web") -> ServiceSpec:
    return ServiceSpec(
        name=name,
        command=(sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"),
        health_url=f"http://127.0.0.1:{port}/",
        url=f"http://127.0.0.1:{port}/",
        ports=(("web", port),),
    )


def test_port_in_use_names_the_port_and_the_holder(pm: ProcessManager) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(PortInUse) as caught:
            pm.check_ports(http_server_spec(port), lambda name: "FHIRLAB_WEB_PORT")
    message = str(caught.value)
    assert f"port {port}" in message
    assert f"pid {psutil.Process().pid}" in message  # this test process holds it
    assert "FHIRLAB_WEB_PORT" in message


def test_crashed_child_reports_exit_code_and_log_tail(pm: ProcessManager) -> None:
    spec = ServiceSpec(
        name="crasher",
        command=(sys.executable, "-c", "print('cannot open database'); raise SystemExit(3)"),
        health_url=f"http://127.0.0.1:{free_port()}/",
        url="-",
        ports=(),
    )
    state = pm.start(spec)
    with pytest.raises(ServiceDied) as caught:
        pm.wait_ready(spec, state, timeout_s=30)
    assert caught.value.returncode == 3
    assert "cannot open database" in str(caught.value)
    assert "fhirlab logs crasher" in caught.value.hint


def test_service_that_never_gets_ready_times_out(pm: ProcessManager) -> None:
    spec = ServiceSpec(
        name="sleeper",
        command=(sys.executable, "-c", "import time; time.sleep(60)"),
        health_url=f"http://127.0.0.1:{free_port()}/",
        url="-",
        ports=(),
    )
    state = pm.start(spec)
    try:
        with pytest.raises(ReadinessTimeout):
            pm.wait_ready(spec, state, timeout_s=1.0)
    finally:
        assert pm.stop("sleeper", timeout_s=5)
    assert pm.status("sleeper").state == "stopped"


def test_start_wait_status_and_stop(pm: ProcessManager) -> None:
    port = free_port()
    spec = http_server_spec(port)
    state = pm.start(spec)
    pm.wait_ready(spec, state, timeout_s=30)
    status = pm.status("web")
    assert status.state == "running"
    assert status.pid == state.pid
    assert status.rss_mb and status.rss_mb > 1
    assert pm.stop("web")
    assert not psutil.pid_exists(state.pid) or psutil.Process(state.pid).status() == "zombie"
    assert port_is_free("127.0.0.1", port)
    assert not pm.state_path("web").exists()


def test_stop_leaves_an_unrelated_process_with_a_reused_pid_alone(pm: ProcessManager) -> None:
    """A state file whose pid now belongs to another process (pid reuse) must not kill it."""
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        pm.run_dir.mkdir(parents=True)
        stale = {
            "name": "ghost",
            "pid": other.pid,
            "create_time": psutil.Process(other.pid).create_time() - 1000,  # not this process
            "started_at": time.time() - 1000,
            "url": "-",
            "health_url": "http://127.0.0.1:1/",
            "ports": [],
            "log": "-",
        }
        pm.state_path("ghost").write_text(json.dumps(stale))
        assert pm.status("ghost").state == "stopped"
        assert pm.stop("ghost") is False
        assert other.poll() is None, "an unrelated process was killed"
        assert not pm.state_path("ghost").exists()
    finally:
        other.kill()
        other.wait()


def test_stop_kills_the_whole_process_group(pm: ProcessManager) -> None:
    script = (
        "import subprocess, sys, time;"
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']);"
        "time.sleep(60)"
    )
    spec = ServiceSpec("parent", (sys.executable, "-c", script), "http://127.0.0.1:1/", "-", ())
    state = pm.start(spec)
    parent = psutil.Process(state.pid)
    deadline = time.time() + 10
    while not parent.children() and time.time() < deadline:
        time.sleep(0.05)
    children = parent.children(recursive=True)
    assert children
    assert pm.stop("parent", timeout_s=5)
    for child in children:
        assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE

"""`fhirlab load --ui`: Locust's own web UI with the scenario users, on 127.0.0.1 only. Driven
through the UI's HTTP API as its page drives it (start a swarm, change the users, stop); Ctrl-C
(SIGINT) then ends the session and the results directory is written. With a policy of one's own
the users go through an extra gateway started with it. (The refused options: tests/unit/load.)"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from labcore.config import LabConfig
from simulator.stack.extra_gateway import free_port
from tests.integration.conftest import lab_env

SCENARIO = "scheduling-assistant"


def _until(check: Any, seconds: float = 60.0) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            found = check()
        except httpx.HTTPError:
            found = None
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError(f"not within {seconds} s")


def _listening(port: int) -> set[str]:
    return {
        c.laddr.ip
        for c in psutil.net_connections(kind="tcp")
        if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port
    }


def _serve(seeded: LabConfig, port: int, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "simulator", "load", "--ui", "--ui-port", str(port), *args],
        env=lab_env(seeded), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=_ctrl_c_as_in_a_terminal,
    )  # fmt: skip


def _ctrl_c_as_in_a_terminal() -> None:
    """In the child: SIGINT at its default, as a shell gives a command it runs in the
    foreground. A test session started in the background (`make test &` in a script) inherits
    SIGINT ignored, and Python keeps an inherited ignore: Ctrl-C would then never arrive."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _interrupt(proc: subprocess.Popen[str]) -> str:
    """Ctrl-C, then its stderr once it has ended."""
    try:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    return err


def test_the_web_ui_drives_the_scenario_users(seeded: LabConfig, tmp_path: Path) -> None:
    port = free_port()
    proc = _serve(seeded, port, "--pace", "4", "--results", str(tmp_path), SCENARIO)
    ui = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=ui, timeout=10) as http:
            _until(lambda: http.get("/").status_code == 200, 120)
            assert _listening(port) == {"127.0.0.1"}
            stats = http.get("/stats/requests").json()
            assert stats["state"] == "ready" and stats["total_rps"] == 0  # nothing until asked
            started = http.post("/swarm", data={"user_count": 2, "spawn_rate": 2})
            assert started.json()["success"], started.text

            def total() -> int:
                rows = http.get("/stats/requests").json()["stats"]
                return next(r["num_requests"] for r in rows if r["name"] == "Aggregated")

            _until(lambda: total() > 10)
            names = {r["name"] for r in http.get("/stats/requests").json()["stats"]}
            assert any(n.startswith(f"{SCENARIO}: ") for n in names), names
            http.post("/swarm", data={"user_count": 4, "spawn_rate": 4})
            _until(lambda: http.get("/stats/requests").json()["user_count"] == 4)
            assert http.post("/stop").status_code == 200
            _until(lambda: http.get("/stats/requests").json()["state"] == "stopped")
    finally:
        err = _interrupt(proc)
    assert proc.returncode == 0, err[-3000:]
    assert ui in err
    (written,) = tmp_path.glob("*/ui.json")
    document = json.loads(written.read_text())
    assert document["gateway"] == "lab" and document["host"] == seeded.gateway_base_url
    assert document["scenarios"] == [SCENARIO] and document["locust_exit"] == 0
    assert document["controls"]["C08"] == "enforce"
    totals = document["totals"]
    assert totals["requests"] > 10 and totals["p50_ms"] > 0
    assert totals["denied"] > 0  # the scheduler's probing steps, refused under load too
    assert (written.parent / "load" / "ui" / "locust_stats.csv").is_file()


def test_a_policy_of_ones_own_gets_its_own_gateway(seeded: LabConfig, tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    shipped = (seeded.repo / "gateway" / "policy.yaml").read_text()
    policy.write_text(shipped.replace("C08: enforce", "C08: monitor"))
    port = free_port()
    proc = _serve(seeded, port, "--policy", str(policy), "--results", str(tmp_path), SCENARIO)
    try:
        _until(lambda: httpx.get(f"http://127.0.0.1:{port}/", timeout=2).status_code == 200, 120)
    finally:
        err = _interrupt(proc)
    assert proc.returncode == 0, err[-3000:]
    (written,) = tmp_path.glob("*/ui.json")
    document = json.loads(written.read_text())
    assert document["gateway"] == "own" and document["host"] != seeded.gateway_base_url, err
    assert document["controls"]["C08"] == "monitor"
    assert document["totals"] is None  # no users started: nothing sent

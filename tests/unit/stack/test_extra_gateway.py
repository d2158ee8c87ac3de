"""Extra gateway processes: started on a free port with the given controls, stopped on exit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from gateway.controls import Mode
from labcore.config import load_config
from labcore.errors import LabError
from simulator.stack.extra_gateway import (
    extra_gateway,
    modes_all,
    source_env,
    write_extra_policy,
)

REPO = Path(__file__).resolve().parents[3]


def test_policy_switches_every_control_and_can_drop_the_rate_limit(tmp_path: Path) -> None:
    path = write_extra_policy(tmp_path / "p.yaml", modes_all(Mode.OFF), rate_limit=False)
    data = yaml.safe_load(path.read_text())
    assert set(data["controls"].values()) == {"off"}
    assert data["rate_limit"]["enabled"] is False


def test_a_policy_gateway_starts_answers_and_stops(tmp_path: Path) -> None:
    cfg = load_config({"FHIRLAB_HOME": str(tmp_path / "lab")})
    with extra_gateway(cfg, "all-off", tmp_path / "gw", modes_all(Mode.OFF)) as gw:
        health = httpx.get(f"http://{cfg.host}:{gw.port}/_gateway/health").json()
        assert health["mode"] == "policy"
        assert set(health["controls"].values()) == {"off"}
        assert gw.base_url.endswith(f":{gw.port}/fhir")
        # no token: the token stage refuses, whatever the controls
        assert httpx.get(f"{gw.base_url}/Patient").status_code == 401
    assert gw.process.poll() is not None


def test_a_gateway_that_cannot_start_is_named_with_its_log(tmp_path: Path) -> None:
    cfg = load_config({"FHIRLAB_HOME": str(tmp_path / "lab")})
    with (
        pytest.raises(LabError, match="'broken' gateway exited at start") as info,
        extra_gateway(cfg, "broken", tmp_path / "gw", None, server_args=("--loop", "nope")),
    ):
        pass
    assert "invalid choice" in info.value.hint


def test_a_source_checkout_runs_its_own_gateway_from_this_checkout(tmp_path: Path) -> None:
    """`--before DIR` compares DIR's code: `python -m gateway` run from this checkout (where
    the benchmarks run) must not import this checkout's package instead."""
    package = tmp_path / "gateway"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "__main__.py").write_text("print('the source checkout')\n")
    run = subprocess.run(
        [sys.executable, "-m", "gateway", "--help"],  # this checkout's would print its usage
        cwd=REPO,
        env=source_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (run.returncode, run.stdout) == (0, "the source checkout\n"), run.stderr[-400:]

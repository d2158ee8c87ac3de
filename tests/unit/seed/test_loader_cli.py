"""`fhirlab seed`: writing to a directory, and clear errors when the lab's servers are missing."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import seed.lab
from labcore.errors import LabError
from seed.options import PopulationOptions
from seed.writers import read_manifest
from simulator.cli import app

runner = CliRunner()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def lab_env(tmp_path: Path, **urls: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FHIRLAB_")}
    env["FHIRLAB_HOME"] = str(tmp_path / "lab")
    env.update(urls)
    return env


def test_out_writes_ndjson_and_bundles_without_servers(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["seed", "--out", str(tmp_path / "pop"), "--patients", "6", "--seed", "3"]
    )
    assert result.exit_code == 0, result.output
    manifest = read_manifest(tmp_path / "pop")
    assert manifest is not None
    assert manifest["summary"]["patients"] == 6 and manifest["summary"]["seed"] == 3
    assert manifest["bundles"][0] == "bundles/0-shared.json"
    assert "resources by type" in result.stdout


def test_unreachable_hapi_is_one_clear_error_and_exit_1(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}/fhir"
    record = tmp_path / "lab" / "seed.json"
    record.parent.mkdir()
    record.write_text("{}")
    done = subprocess.run(
        [sys.executable, "-m", "simulator", "seed", "--patients", "2", "--no-users"],
        env=lab_env(tmp_path, FHIRLAB_HAPI_URL=url),
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert f"error: HAPI FHIR at {url} is unreachable (ConnectError)" in done.stderr
    assert "fix: start the lab with `fhirlab up`" in done.stderr
    assert "Traceback" not in done.stderr
    assert record.read_text() == "{}"  # a failed check changes nothing


def test_unreachable_keycloak_is_reported_before_anything_is_loaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kc = f"http://localhost:{closed_port()}"
    for key, value in lab_env(tmp_path, FHIRLAB_KEYCLOAK_URL=kc).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(seed.lab, "check_hapi", lambda url: None)

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("nothing may be loaded when Keycloak is unreachable")

    monkeypatch.setattr(seed.lab, "aload_population", never)
    result = runner.invoke(app, ["seed", "--patients", "2"])
    assert isinstance(result.exception, LabError), result.output
    assert result.exception.message == f"Keycloak at {kc} is unreachable (ConnectError)"


@pytest.mark.parametrize(
    "args",
    [["--users", "1.5"], ["--patients", "-1"], ["--tenants", "27"], ["--concurrency", "0"]],
)
def test_bad_options_are_usage_errors(args: list[str]) -> None:
    result = runner.invoke(app, ["seed", *args])
    assert result.exit_code == 2


def test_a_load_that_fails_leaves_no_seed_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in lab_env(tmp_path).items():
        monkeypatch.setenv(key, value)
    record = tmp_path / "lab" / "seed.json"
    record.parent.mkdir()
    record.write_text("{}")
    monkeypatch.setattr(seed.lab, "check_hapi", lambda url: None)

    async def fail(*args: object, **kwargs: object) -> None:
        raise LabError("HAPI FHIR at x rejected the bundle of patient pat-a-000001 (400): no")

    monkeypatch.setattr(seed.lab, "aload_population", fail)
    result = runner.invoke(app, ["seed", "--patients", "2", "--no-users"])
    assert isinstance(result.exception, LabError)
    assert not record.exists()  # the old record no longer describes what HAPI holds


@pytest.mark.parametrize(
    ("before", "warned"),
    [
        ({"patients": 5, "seed": 42, "tenants": 2}, True),  # another seed
        ({"patients": 9, "seed": 7, "tenants": 2}, True),  # more patients than now
        ({"patients": 2, "seed": 7, "tenants": 2}, False),  # now a superset of it
    ],
)
def test_loading_over_another_population_warns(
    tmp_path: Path, before: dict[str, int], warned: bool
) -> None:
    record = tmp_path / "lab" / "seed.json"
    record.parent.mkdir()
    record.write_text(json.dumps({"options": PopulationOptions(**before).to_dict()}))
    url = f"http://127.0.0.1:{closed_port()}/fhir"
    done = subprocess.run(
        [sys.executable, "-m", "simulator", "seed", "--patients", "4", "--seed", "7"],
        env=lab_env(tmp_path, FHIRLAB_HAPI_URL=url),
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert ("warning: this lab holds another population" in done.stderr) is warned

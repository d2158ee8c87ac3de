"""HAPI's datasource credentials reach the HAPI process through its environment only: never its
command line (which any local user can read with `ps`), the lab's log or its state file."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import psutil
import pytest

from labcore.config import LabConfig, load_config
from labcore.errors import LabError
from simulator.stack import lab, services
from simulator.stack.process import ProcessManager
from simulator.stack.services import (
    check_hapi_datasource,
    gateway_spec,
    hapi_database_args,
    hapi_database_env,
    hapi_spec,
)
from simulator.stack.tools import Jdk

POSTGRES = "jdbc:postgresql://127.0.0.1:5432/hapi"
PASSWORD = "s3cret-Pw-4-hapi"
SEEN = "child-saw-the-password"

# Stands in for `java`: reports (without echoing it) whether the password arrived, then idles.
FAKE_JAVA = f"""#!{sys.executable}
import os, time
print({SEEN!r} if os.environ.get("SPRING_DATASOURCE_PASSWORD") == {PASSWORD!r} else "no password",
      flush=True)
time.sleep(30)
"""


def postgres_config(home: Path, **extra: str) -> LabConfig:
    return load_config(
        {
            "FHIRLAB_HOME": str(home),
            "FHIRLAB_HAPI_DATASOURCE_URL": POSTGRES,
            "FHIRLAB_HAPI_DATASOURCE_USERNAME": "hapi",
            "FHIRLAB_HAPI_DATASOURCE_PASSWORD": PASSWORD,
            **extra,
        }
    )


@pytest.fixture
def fake_java(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """hapi_spec without a real JDK or jar: `java` is FAKE_JAVA."""
    home = tmp_path / "jdk"
    (home / "bin").mkdir(parents=True)
    java = home / "bin" / "java"
    java.write_text(FAKE_JAVA)
    java.chmod(0o700)
    monkeypatch.setattr(services, "find_jdk", lambda _name, _versions: Jdk(home, 17))
    monkeypatch.setattr(services, "ensure_hapi_jar", lambda _cfg, _say: tmp_path / "hapi.jar")
    return java


def test_hapi_command_line_has_no_credentials_and_its_env_has_them(
    tmp_path: Path, fake_java: Path
) -> None:
    cfg = postgres_config(tmp_path / "lab")
    spec = hapi_spec(cfg)
    command = " ".join(spec.command)
    assert PASSWORD not in command
    assert "spring.datasource.password" not in command
    assert "spring.datasource.username" not in command
    assert f"--spring.datasource.url={POSTGRES}" in spec.command  # not a secret: stays visible
    assert spec.env["SPRING_DATASOURCE_PASSWORD"] == PASSWORD
    assert spec.env["SPRING_DATASOURCE_USERNAME"] == "hapi"
    assert PASSWORD not in repr(spec)
    # the variables reach the HAPI child only, not the lab's other servers
    assert not [key for key in gateway_spec(cfg).env if key.startswith("SPRING_DATASOURCE")]


def test_running_hapi_shows_no_password_in_ps_log_or_state_file(
    tmp_path: Path, fake_java: Path
) -> None:
    cfg = postgres_config(tmp_path / "lab")
    cfg.data_dir.mkdir(parents=True)
    spec = hapi_spec(cfg)
    pm = ProcessManager(cfg.run_dir, cfg.log_dir)
    state = pm.start(spec)
    try:
        log = pm.log_path("hapi")
        deadline = time.monotonic() + 20
        while SEEN not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert SEEN in log.read_text()  # the child got the password from its environment
        proc = psutil.Process(state.pid)
        assert PASSWORD not in " ".join(proc.cmdline())  # what `ps` shows any local user
        assert proc.environ()["SPRING_DATASOURCE_PASSWORD"] == PASSWORD
        for path in (log, pm.state_path("hapi")):
            assert PASSWORD not in path.read_text()
    finally:
        pm.stop("hapi", timeout_s=5)


def test_a_url_that_carries_a_password_leaves_the_command_line_too(tmp_path: Path) -> None:
    url = f"{POSTGRES}?user=hapi&password={PASSWORD}"
    cfg = load_config({"FHIRLAB_HOME": str(tmp_path), "FHIRLAB_HAPI_DATASOURCE_URL": url})
    check_hapi_datasource(cfg)  # the URL supplies the login
    assert PASSWORD not in " ".join(hapi_database_args(cfg))
    assert hapi_database_env(cfg) == {"SPRING_DATASOURCE_URL": url}


@pytest.mark.parametrize(
    "given",
    [
        {},
        {"FHIRLAB_HAPI_DATASOURCE_USERNAME": "hapi"},
        {"FHIRLAB_HAPI_DATASOURCE_PASSWORD": PASSWORD},
    ],
)
def test_postgres_without_login_is_a_clear_error_naming_both_variables(
    tmp_path: Path, fake_java: Path, given: dict[str, str]
) -> None:
    cfg = load_config(
        {"FHIRLAB_HOME": str(tmp_path), "FHIRLAB_HAPI_DATASOURCE_URL": POSTGRES, **given}
    )
    with pytest.raises(LabError) as caught:
        hapi_spec(cfg)
    text = str(caught.value)
    assert "FHIRLAB_HAPI_DATASOURCE_USERNAME" in text
    assert "FHIRLAB_HAPI_DATASOURCE_PASSWORD" in text
    assert "FHIRLAB_HAPI_DATASOURCE_USERNAME" in caught.value.hint
    assert "FHIRLAB_HAPI_DATASOURCE_PASSWORD" in caught.value.hint
    check_hapi_datasource(load_config({"FHIRLAB_HOME": str(tmp_path)}))  # H2 needs no login


def test_up_refuses_postgres_without_login_before_starting_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_build(_cfg: LabConfig, _say: object) -> None:
        raise AssertionError("up() went on to find Java, build or download before refusing")

    monkeypatch.setattr(lab, "SPEC_BUILDERS", dict.fromkeys(lab.SERVICES, no_build))
    cfg = load_config(
        {"FHIRLAB_HOME": str(tmp_path / "lab"), "FHIRLAB_HAPI_DATASOURCE_URL": POSTGRES}
    )
    with pytest.raises(LabError) as caught:
        lab.up(cfg, ["keycloak", "hapi"])
    assert "FHIRLAB_HAPI_DATASOURCE_PASSWORD" in str(caught.value)
    assert not cfg.run_dir.exists() and not cfg.log_dir.exists()

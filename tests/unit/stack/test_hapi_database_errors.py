"""When HAPI exits during start because its PostgreSQL database refused it, `fhirlab up` says why in
one line and which FHIRLAB_HAPI_DATASOURCE_* variables to set, instead of only a Java stack trace.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from labcore.config import load_config
from simulator.stack import services
from simulator.stack.errors import ServiceDied
from simulator.stack.extra_gateway import free_port
from simulator.stack.process import ProcessManager
from simulator.stack.services import explain_hapi_exit, hapi_spec
from simulator.stack.tools import Jdk

# What PostgreSQL's JDBC driver wrote into HAPI's log (HAPI 8.8, PostgreSQL 15).
WRONG_PASSWORD = (
    "Caused by: org.postgresql.util.PSQLException: FATAL: password authentication failed for"
    ' user "hapi"'
)
LOGINS = ("FHIRLAB_HAPI_DATASOURCE_USERNAME", "FHIRLAB_HAPI_DATASOURCE_PASSWORD")


def fake_java(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, says: str) -> None:
    """`java` for hapi_spec: prints `says` and exits 1, as HAPI does when its database refuses."""
    home = tmp_path / "jdk"
    (home / "bin").mkdir(parents=True, exist_ok=True)
    java = home / "bin" / "java"
    java.write_text(f"#!{sys.executable}\nprint({says!r}, flush=True)\nraise SystemExit(1)\n")
    java.chmod(0o700)
    monkeypatch.setattr(services, "find_jdk", lambda _name, _versions: Jdk(home, 17))
    monkeypatch.setattr(services, "ensure_hapi_jar", lambda _cfg, _say: tmp_path / "hapi.jar")


def start_hapi(tmp_path: Path) -> ServiceDied:
    cfg = load_config(
        {
            "FHIRLAB_HOME": str(tmp_path / "lab"),
            # a port nothing answers on: a lab running on the default ports would look ready
            "FHIRLAB_HAPI_PORT": str(free_port()),
            "FHIRLAB_HAPI_DATASOURCE_URL": "jdbc:postgresql://127.0.0.1:5432/hapi",
            "FHIRLAB_HAPI_DATASOURCE_USERNAME": "hapi",
            "FHIRLAB_HAPI_DATASOURCE_PASSWORD": "wrong",
        }
    )
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    spec = hapi_spec(cfg)
    pm = ProcessManager(cfg.run_dir, cfg.log_dir)
    with pytest.raises(ServiceDied) as caught:
        pm.wait_ready(spec, pm.start(spec), timeout_s=30)
    return caught.value


def test_a_refused_login_names_the_cause_and_the_variables_to_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_java(tmp_path, monkeypatch, "\tat some.Frame(Frame.java:1)\n" * 3 + WRONG_PASSWORD)
    died = start_hapi(tmp_path)
    first_line = str(died).splitlines()[0]
    assert first_line.startswith("hapi exited during start (exit code 1): PostgreSQL refused")
    assert 'password authentication failed for user "hapi"' in first_line
    for variable in LOGINS:
        assert variable in died.hint
    assert "fhirlab logs hapi" in died.hint


def test_an_earlier_start_is_not_blamed_for_this_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_java(tmp_path, monkeypatch, WRONG_PASSWORD)
    start_hapi(tmp_path)
    fake_java(tmp_path, monkeypatch, "java.lang.OutOfMemoryError: Java heap space")
    died = start_hapi(tmp_path)  # same log file, appended to
    assert "PostgreSQL" not in str(died).splitlines()[0]
    assert "FHIRLAB_HAPI_DATASOURCE" not in died.hint


@pytest.mark.parametrize(
    ("log", "cause", "fix_names"),
    [
        (WRONG_PASSWORD, "PostgreSQL refused HAPI's login", LOGINS),
        ('FATAL: role "hapi" does not exist', "PostgreSQL refused HAPI's login", LOGINS),
        (
            'FATAL: no pg_hba.conf entry for host "10.0.0.5", user "hapi", database "hapi"',
            "PostgreSQL refused HAPI's connection",
            ("pg_hba.conf", *LOGINS),
        ),
        (
            'FATAL: database "hapi" does not exist',
            "HAPI's database is missing",
            ("FHIRLAB_HAPI_DATASOURCE_URL",),
        ),
        (
            "PSQLException: Connection to 127.0.0.1:5432 refused. Check that the hostname and port"
            " are correct",
            "no PostgreSQL server answers",
            ("FHIRLAB_HAPI_DATASOURCE_URL",),
        ),
    ],
)
def test_database_refusals_are_recognised(log: str, cause: str, fix_names: tuple[str, ...]) -> None:
    explained = explain_hapi_exit(f"Started HAPI\n{log}\n\tat org.postgresql.Driver")
    assert explained is not None
    assert explained[0].startswith(cause)
    assert all(name in explained[1] for name in fix_names)


def test_other_exits_are_left_to_the_log() -> None:
    assert explain_hapi_exit("java.lang.OutOfMemoryError: Java heap space") is None

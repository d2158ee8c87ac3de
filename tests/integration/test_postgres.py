"""HAPI FHIR on a real PostgreSQL server, driven through the `fhirlab` CLI as a user would.

The module starts a throwaway PostgreSQL cluster (Debian's `postgresql` package: initdb, pg_ctl,
psql) in a temporary directory, on 127.0.0.1 and a free port, with a password login; then a lab of
its own (.lab/test-postgres, the default ports + 30000, so it never meets the session's test lab)
whose HAPI uses that database through FHIRLAB_HAPI_DATASOURCE_URL, _USERNAME and _PASSWORD. It
seeds a few patients, replays a good and a misconfigured scenario, checks that the data lives in
PostgreSQL, and that `fhirlab down` leaves no process behind. The lab and the cluster are always
stopped, even when a step fails.
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import psutil
import pytest

from labcore.config import REPO_ROOT, LabConfig, Ports, load_config
from simulator.stack.extra_gateway import free_port
from tests.integration.conftest import exclusive, lab_env, lab_processes

PORTS = Ports(**{name: port + 30000 for name, port in Ports().items()})
HOME = REPO_ROOT / ".lab" / "test-postgres"
PATIENTS = 5
SCENARIOS = ("population-analytics", "wildcard-scheduler")  # a good one, a misconfigured one
PG_TOOLS = ("initdb", "pg_ctl", "postgres", "psql")
INSTALL = "install them with `apt-get install postgresql` (Debian/Ubuntu)"


def pg_bindir() -> Path:
    """The directory holding PostgreSQL's server programs: Debian's newest, else PATH."""
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    for bindir in reversed(versions):
        if all((bindir / tool).exists() for tool in PG_TOOLS):
            return bindir
    found = {tool: shutil.which(tool) for tool in PG_TOOLS}
    if all(found.values()):
        return Path(str(found["pg_ctl"])).resolve().parent
    missing = ", ".join(tool for tool, path in found.items() if not path)
    pytest.fail(
        f"PostgreSQL server programs not found ({missing} neither in /usr/lib/postgresql/*/bin"
        f" nor on PATH); this test runs HAPI on a real PostgreSQL: {INSTALL}",
        pytrace=False,
    )


def as_server_user() -> list[str]:
    """initdb and postgres refuse to run as root: run them as Debian's `postgres` user then."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        pytest.fail(
            "running as root, and PostgreSQL refuses root: no `postgres` user to run it as; "
            + INSTALL,
            pytrace=False,
        )
    return ["runuser", "-u", "postgres", "--"]


@dataclass(frozen=True)
class Cluster:
    bindir: Path
    port: int
    user: str
    password: str
    database: str = "hapi"

    @property
    def jdbc_url(self) -> str:
        return f"jdbc:postgresql://127.0.0.1:{self.port}/{self.database}"

    def psql(self, sql: str, database: str | None = None) -> str:
        done = subprocess.run(
            [str(self.bindir / "psql"), "-X", "-At", "-v", "ON_ERROR_STOP=1",
             "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user,
             "-d", database or self.database, "-c", sql],
            env={**os.environ, "PGPASSWORD": self.password},
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 0, f"psql {sql!r}: {done.stderr}"
        return done.stdout.strip()

    def counts(self) -> dict[str, int]:
        """Live resources per type, straight from HAPI's tables."""
        rows = self.psql(
            "SELECT res_type, count(*) FROM hfj_resource WHERE res_deleted_at IS NULL"
            " GROUP BY res_type"
        )
        return {kind: int(n) for kind, n in (row.split("|") for row in rows.splitlines())}


@pytest.fixture(scope="module")
def postgres() -> Iterator[Cluster]:
    bindir = pg_bindir()
    runner = as_server_user()
    root = Path(tempfile.mkdtemp(prefix="fhirlab-pg-"))
    cluster = Cluster(bindir, free_port(), "hapi", secrets.token_urlsafe(18))
    (root / "pwfile").write_text(cluster.password + "\n")
    if runner:
        shutil.chown(root, "postgres")
        shutil.chown(root / "pwfile", "postgres")
    data, log = root / "data", root / "postgres.log"

    def run(*command: str) -> None:
        done = subprocess.run(
            [*runner, *command], capture_output=True, text=True, timeout=120, check=False
        )
        assert done.returncode == 0, f"{' '.join(command)}:\n{done.stdout}{done.stderr}"

    try:
        run(str(bindir / "initdb"), "-D", str(data), "-U", cluster.user, "--pwfile",
            str(root / "pwfile"), "--auth=scram-sha-256", "-E", "UTF8", "--no-locale")  # fmt: skip
        # a throwaway cluster: no durability, which spares seconds of HAPI's schema creation
        options = (
            f"-c listen_addresses=127.0.0.1 -p {cluster.port} -k {root}"
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60",
            "-o", options, "start")  # fmt: skip
        cluster.psql(f"CREATE DATABASE {cluster.database}", database="postgres")
        yield cluster
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run(
                [*runner, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                capture_output=True, timeout=60, check=False,
            )  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)


def datasource_env(cfg: LabConfig, cluster: Cluster) -> dict[str, str]:
    return {
        **lab_env(cfg),
        "FHIRLAB_HAPI_DATASOURCE_URL": cluster.jdbc_url,
        "FHIRLAB_HAPI_DATASOURCE_USERNAME": cluster.user,
        "FHIRLAB_HAPI_DATASOURCE_PASSWORD": cluster.password,
    }


def fhirlab(env: dict[str, str], *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "simulator", *args],
        env=env, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip
    took = time.monotonic() - started
    print(f"[postgres lab] fhirlab {' '.join(args)}: exit {done.returncode}, {took:.0f} s",
          file=sys.stderr)  # fmt: skip
    return done


def output(done: subprocess.CompletedProcess) -> str:
    return f"exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


@dataclass(frozen=True)
class PgLab:
    cfg: LabConfig
    env: dict[str, str]
    cluster: Cluster


@pytest.fixture(scope="module")
def pg_lab(postgres: Cluster) -> Iterator[PgLab]:
    """A lab of its own whose HAPI runs on `postgres`; `fhirlab down` at the end, always."""
    cfg = replace(load_config({}), home=HOME, ports=PORTS)
    env = datasource_env(cfg, postgres)
    with exclusive(cfg.home):
        fhirlab(env, "down", timeout=120)  # what an interrupted earlier run may have left
        try:
            done = fhirlab(env, "up", "--fresh")
            assert done.returncode == 0, output(done)
            done = fhirlab(env, "clients", "apply", timeout=300)
            assert done.returncode == 0, output(done)
            yield PgLab(cfg, env, postgres)
        finally:
            down = fhirlab(env, "down", timeout=120)
            assert down.returncode == 0, output(down)
            leftover = lab_processes(cfg)
            assert not leftover, f"`fhirlab down` left processes running: {leftover}"


@pytest.fixture(scope="module")
def seeded(pg_lab: PgLab) -> PgLab:
    done = fhirlab(pg_lab.env, "seed", "--patients", str(PATIENTS), "--users", "1.0")
    assert done.returncode == 0, output(done)
    return pg_lab


def test_a_postgres_url_without_login_is_refused_naming_the_variables() -> None:
    cfg = replace(load_config({}), home=HOME / "refused", ports=PORTS)
    env = {**lab_env(cfg), "FHIRLAB_HAPI_DATASOURCE_URL": "jdbc:postgresql://127.0.0.1:1/hapi"}
    done = fhirlab(env, "up", "hapi", timeout=60)
    assert done.returncode == 1, output(done)
    for variable in ("FHIRLAB_HAPI_DATASOURCE_USERNAME", "FHIRLAB_HAPI_DATASOURCE_PASSWORD"):
        assert variable in done.stderr, output(done)
    assert not (cfg.home / "run").exists()  # refused before anything started


def test_hapi_runs_on_postgres_and_its_password_stays_off_the_command_line(
    pg_lab: PgLab,
) -> None:
    state = json.loads((pg_lab.cfg.run_dir / "hapi.json").read_text())
    command = " ".join(psutil.Process(state["pid"]).cmdline())
    assert f"--spring.datasource.url={pg_lab.cluster.jdbc_url}" in command
    assert pg_lab.cluster.password not in command
    # HAPI created its schema in PostgreSQL, and no H2 file anywhere in the lab's data
    tables = pg_lab.cluster.psql("SELECT count(*) FROM pg_tables WHERE tablename LIKE 'hfj_%'")
    assert int(tables) > 20
    assert not list(pg_lab.cfg.data_dir.glob("hapi*/**/*.mv.db"))


def test_the_seeded_population_lives_in_postgres(seeded: PgLab) -> None:
    counts = seeded.cluster.counts()
    assert counts.get("Patient") == PATIENTS, counts
    assert counts.get("Group", 0) >= 2 and counts.get("Observation", 0) > 0, counts
    # what HAPI answers is what the database holds
    with httpx.Client(base_url=seeded.cfg.hapi_base_url, timeout=60) as hapi:
        for kind in ("Patient", "Observation"):
            total = hapi.get(f"/{kind}", params={"_summary": "count"}).json()["total"]
            assert total == counts[kind], kind


def test_a_good_and_a_misconfigured_scenario_replay_on_postgres(
    seeded: PgLab, tmp_path: Path
) -> None:
    done = fhirlab(
        seeded.env, "run", "--results", str(tmp_path), "--no-baseline", *SCENARIOS, timeout=900
    )
    assert done.returncode == 0, output(done)
    (results_file,) = tmp_path.glob("*/results.json")
    runs = {r["scenario"]: r for r in json.loads(results_file.read_text())["replay"]["runs"]}
    assert set(runs) == set(SCENARIOS)
    for name, run in runs.items():
        assert run["expectations"] and all(e["ok"] for e in run["expectations"]), name
    # the misconfiguration was seen: minimum necessary (C05) violated, as the scenario expects
    assert runs["wildcard-scheduler"]["verdicts"]["C05"] == "violated"
    assert runs["population-analytics"]["verdicts"]["C04"] == "held"
    # the approved client's bulk export ran as a HAPI batch job recorded in PostgreSQL
    exports = seeded.cluster.psql(
        "SELECT count(*) FROM bt2_job_instance WHERE definition_id = 'BULK_EXPORT'"
        " AND stat = 'COMPLETED'"
    )
    assert int(exports) >= 1

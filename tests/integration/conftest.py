"""The real stack for integration tests: started once per session, stopped at the end.

The session uses its own lab directory (.lab/test) and ports (18080, 18180, 19180, 18280; shift
them with FHIRLAB_TEST_PORT_OFFSET), so it never touches a lab you run
by hand. If a healthy stack already runs there (e.g. `make test-stack`), it is reused and left
running. Otherwise it is started fresh, and at the end `fhirlab down` must leave no process behind.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import httpx
import psutil
import pytest

from labcore.config import REPO_ROOT, LabConfig, Ports, load_config
from seed import PopulationOptions
from seed.lab import seed_lab
from simulator.authserver.apply import apply_profiles
from simulator.smart.auth import PrivateKeyJwt
from simulator.smart.client import SmartClient
from simulator.smart.discovery import discover_issuer
from simulator.smart.keys import client_key
from simulator.stack import lab as stack

# The test lab's ports are the defaults + FHIRLAB_TEST_PORT_OFFSET (10000: 18080, 18180, ...).
OFFSET = int(os.environ.get("FHIRLAB_TEST_PORT_OFFSET", "10000"))
TEST_PORTS = Ports(**{name: port + OFFSET for name, port in Ports().items()})
TEST_HOME = REPO_ROOT / ".lab" / ("test" if OFFSET == 10000 else f"test-{OFFSET}")
POPULATION = PopulationOptions(patients=20, seed=7, tenants=2)  # the test population


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.integration)


def lab_env(cfg: LabConfig) -> dict[str, str]:
    """Environment that points the `fhirlab` CLI at the test lab."""
    return {
        **os.environ,
        "FHIRLAB_HOME": str(cfg.home),
        "FHIRLAB_GATEWAY_PORT": str(cfg.ports.gateway),
        "FHIRLAB_KEYCLOAK_PORT": str(cfg.ports.keycloak),
        "FHIRLAB_KEYCLOAK_MANAGEMENT_PORT": str(cfg.ports.keycloak_management),
        "FHIRLAB_HAPI_PORT": str(cfg.ports.hapi),
    }


def lab_processes(cfg: LabConfig) -> list[str]:
    """Processes that belong to the test lab (by lab path or by one of its ports)."""
    found = []
    ports = {p for _, p in cfg.ports.items()}
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if str(cfg.home) in cmd or any(f"--port {p}" in cmd for p in ports):
            found.append(f"{proc.info['pid']}: {cmd[:120]}")
    for conn in psutil.net_connections(kind="inet"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr.port in ports:
            found.append(f"listener on {conn.laddr.port} (pid {conn.pid})")
    return found


@contextmanager
def exclusive(home: Path) -> Iterator[None]:
    """One test session per test lab: a second one would stop the first one's servers."""
    home.mkdir(parents=True, exist_ok=True)
    with (home / "session.lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pytest.exit(
                f"another test session is using the test lab in {home}; wait for it, or run this"
                " one beside it with FHIRLAB_TEST_PORT_OFFSET=20000",
                returncode=1,
            )
        yield


@pytest.fixture(scope="session")
def lab() -> Iterator[LabConfig]:
    cfg = replace(load_config({}), home=TEST_HOME, ports=TEST_PORTS)
    with exclusive(cfg.home):
        yield from _lab(cfg)


def _lab(cfg: LabConfig) -> Iterator[LabConfig]:
    if all(s.state == "running" for s in stack.status(cfg)):
        yield cfg
        return
    stack.down(cfg)
    stack.up(cfg, fresh=True, say=lambda m: print(f"[lab] {m}", file=sys.stderr))
    try:
        yield cfg
    finally:
        down = subprocess.run(
            [sys.executable, "-m", "simulator", "down"],
            env=lab_env(cfg), capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert down.returncode == 0, down.stderr
        leftover = lab_processes(cfg)
        assert not leftover, f"`fhirlab down` left processes running: {leftover}"


@pytest.fixture(scope="session")
def gateway(lab: LabConfig) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=lab.gateway_base_url, timeout=60) as client:
        yield client


@pytest.fixture(scope="session")
def hapi(lab: LabConfig) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=lab.hapi_base_url, timeout=60) as client:
        yield client


@pytest.fixture(scope="session")
def clients_applied(lab: LabConfig) -> LabConfig:
    """The lab's client profiles provisioned into Keycloak."""
    apply_profiles(lab)
    return lab


@pytest.fixture(scope="module")
def seeded(clients_applied: LabConfig) -> LabConfig:
    """The test population seeded afresh (with a login for every patient) for each module that
    asks: a module before it may have changed the data or seeded another population."""
    seed_lab(clients_applied, POPULATION, users_share=1.0)
    return clients_applied


@pytest.fixture
def analytics_token(clients_applied: LabConfig) -> str:
    """A backend-services token of the approved analytics client (tenant-a)."""
    lab = clients_applied
    server = discover_issuer(lab.issuer("tenant-a"))
    key = client_key(lab.home, "tenant-a", "population-analytics")
    with SmartClient(server, PrivateKeyJwt("population-analytics", key)) as client:
        token = client.client_credentials(
            "system/Patient.rs system/Group.rs system/Observation.rs system/Condition.rs"
        )
    return token.access_token


def tenant_tag(tenant: str) -> dict[str, str]:
    return {"system": "https://fhirlab.dev/tenant", "code": tenant}

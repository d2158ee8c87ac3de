"""The lab's three servers as `ServiceSpec`s: what to run, on which ports, and how to tell ready.

Start order matters only for readiness: Keycloak and HAPI start side by side; the gateway needs
neither to start (it fetches Keycloak's keys lazily and forwards to HAPI per request).
"""

from __future__ import annotations

import re
import sys

import httpx

from labcore.config import LabConfig
from labcore.errors import LabError
from simulator.stack.artifacts import (
    Say,
    ensure_hapi_jar,
    ensure_keycloak,
    install_smart_provider,
    quiet,
)
from simulator.stack.process import ServiceSpec, status_ok
from simulator.stack.tools import find_jdk

SERVICES = ("keycloak", "hapi", "gateway")

POSTGRES_DIALECT = "ca.uhn.fhir.jpa.model.dialect.HapiFhirPostgresDialect"

# Java versions each server supports, most preferred first.
KEYCLOAK_JAVA = (21, 17)
HAPI_JAVA = (17, 21)


def _keycloak_ready(response: httpx.Response) -> bool:
    return response.status_code == 200 and '"UP"' in response.text


def _hapi_ready(response: httpx.Response) -> bool:
    return response.status_code == 200 and '"CapabilityStatement"' in response.text


def keycloak_start_options(http_port: int, management_port: int, hostname: str) -> list[str]:
    """Options shared by the native process and the container (docker-compose.yml is checked
    against these in tests/unit/stack/test_compose.py)."""
    return [
        "start-dev",
        f"--http-port={http_port}",
        f"--http-management-port={management_port}",
        f"--hostname={hostname}",
        "--health-enabled=true",
    ]


def keycloak_spec(cfg: LabConfig, say: Say = quiet) -> ServiceSpec:
    jdk = find_jdk("Keycloak", KEYCLOAK_JAVA)
    home = ensure_keycloak(cfg, say)
    install_smart_provider(cfg, home, say)
    db = cfg.data_dir / "keycloak" / "keycloakdb"
    return ServiceSpec(
        name="keycloak",
        command=(
            str(home / "bin" / "kc.sh"),
            *keycloak_start_options(
                cfg.ports.keycloak, cfg.ports.keycloak_management, cfg.keycloak_url
            ),
            f"--http-host={cfg.host}",
            "--db=dev-file",
            f"--db-url=jdbc:h2:file:{db};NON_KEYWORDS=VALUE",
        ),
        env={
            "JAVA_HOME": str(jdk.home),
            "KC_BOOTSTRAP_ADMIN_USERNAME": cfg.admin_user,
            "KC_BOOTSTRAP_ADMIN_PASSWORD": cfg.admin_password,
            "JAVA_OPTS_KC_HEAP": f"-Xms64m -Xmx{cfg.keycloak_heap}",
        },
        health_url=cfg.keycloak_health_url,
        url=cfg.keycloak_url,
        ports=(
            ("keycloak", cfg.ports.keycloak),
            ("keycloak_management", cfg.ports.keycloak_management),
        ),
        health_check=_keycloak_ready,
    )


def _url_sets(url: str, key: str) -> bool:
    """Does the JDBC URL carry `key=` as a parameter (`?key=`, `&key=` or H2's `;KEY=`)?"""
    return re.search(rf"[?&;]{key}=", url, re.IGNORECASE) is not None


def hapi_datasource_url(cfg: LabConfig) -> str:
    """HAPI's JDBC URL: the configured one, or embedded H2 under the lab's data dir."""
    return cfg.hapi_datasource_url or f"jdbc:h2:file:{cfg.data_dir / 'hapi' / 'h2db'}"


def check_hapi_datasource(cfg: LabConfig) -> None:
    """Refuse to start HAPI on PostgreSQL without a login (HAPI would fail only minutes later)."""
    url = hapi_datasource_url(cfg)
    if not url.startswith("jdbc:postgresql:"):
        return
    missing = [
        var
        for var, value, key in (
            ("FHIRLAB_HAPI_DATASOURCE_USERNAME", cfg.hapi_datasource_username, "user"),
            ("FHIRLAB_HAPI_DATASOURCE_PASSWORD", cfg.hapi_datasource_password, "password"),
        )
        if not value and not _url_sets(url, key)
    ]
    if missing:
        raise LabError(
            "FHIRLAB_HAPI_DATASOURCE_URL is a PostgreSQL database but "
            f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set",
            "set FHIRLAB_HAPI_DATASOURCE_USERNAME and FHIRLAB_HAPI_DATASOURCE_PASSWORD "
            "to the database login HAPI should use",
        )


LOGIN_FIX = (
    "set FHIRLAB_HAPI_DATASOURCE_USERNAME and FHIRLAB_HAPI_DATASOURCE_PASSWORD to a login that"
    " the database in FHIRLAB_HAPI_DATASOURCE_URL accepts"
)

# Why HAPI could not use its PostgreSQL database, as PostgreSQL or its JDBC driver says it in
# HAPI's log: (pattern, cause, fix).
DATABASE_EXITS = (
    (
        r'password authentication failed for user "[^"]*"',
        "PostgreSQL refused HAPI's login",
        LOGIN_FIX,
    ),
    (r'role "[^"]*" does not exist', "PostgreSQL refused HAPI's login", LOGIN_FIX),
    (
        r"no pg_hba\.conf entry for host [^\n]*",
        "PostgreSQL refused HAPI's connection",
        "add a pg_hba.conf rule for this host, user and database, or " + LOGIN_FIX,
    ),
    (
        r'database "[^"]*" does not exist',
        "HAPI's database is missing",
        "create it (`createdb`), or name an existing one in FHIRLAB_HAPI_DATASOURCE_URL",
    ),
    (
        r"Connection to \S+ refused",
        "no PostgreSQL server answers",
        "start PostgreSQL, or correct the host and port in FHIRLAB_HAPI_DATASOURCE_URL",
    ),
)


def explain_hapi_exit(log: str) -> tuple[str, str] | None:
    """(cause, fix) when HAPI's log of a failed start shows that its database refused it."""
    for pattern, cause, fix in DATABASE_EXITS:
        found = re.search(pattern, log)
        if found:
            return f"{cause} ({found.group(0)})", fix
    return None


def hapi_database_args(cfg: LabConfig) -> list[str]:
    """HAPI's non-secret datasource settings, as command-line arguments (visible in `ps`).

    Credentials are never among them: see `hapi_database_env`. A URL that itself carries a
    password goes there too."""
    url = hapi_datasource_url(cfg)
    args = [] if _url_sets(url, "password") else [f"--spring.datasource.url={url}"]
    if url.startswith("jdbc:postgresql:"):
        args += [
            "--spring.datasource.driverClassName=org.postgresql.Driver",
            f"--spring.jpa.properties.hibernate.dialect={POSTGRES_DIALECT}",
        ]
    return args


def hapi_database_env(cfg: LabConfig) -> dict[str, str]:
    """HAPI's datasource credentials, for the HAPI process's environment only.

    Spring Boot reads SPRING_DATASOURCE_* from its environment, over application.yaml. Another
    local user can read a process's command line (`ps`) but not its environment."""
    url = hapi_datasource_url(cfg)
    env = {"SPRING_DATASOURCE_URL": url} if _url_sets(url, "password") else {}
    if cfg.hapi_datasource_username:
        env["SPRING_DATASOURCE_USERNAME"] = cfg.hapi_datasource_username
    if cfg.hapi_datasource_password:
        env["SPRING_DATASOURCE_PASSWORD"] = cfg.hapi_datasource_password
    return env


def hapi_spec(cfg: LabConfig, say: Say = quiet) -> ServiceSpec:
    check_hapi_datasource(cfg)  # before finding Java or building the jar
    jdk = find_jdk("HAPI FHIR", HAPI_JAVA)
    jar = ensure_hapi_jar(cfg, say)
    return ServiceSpec(
        name="hapi",
        command=(
            str(jdk.java),
            f"-Xmx{cfg.hapi_heap}",
            "-XX:+UseG1GC",
            "-XX:+ExitOnOutOfMemoryError",
            "-jar",
            str(jar),
            f"--spring.config.location=file:{cfg.repo / 'hapi' / 'application.yaml'}",
            f"--server.address={cfg.host}",
            f"--server.port={cfg.ports.hapi}",
            *hapi_database_args(cfg),
        ),
        cwd=cfg.data_dir,
        env=hapi_database_env(cfg),
        health_url=f"{cfg.hapi_base_url}/metadata",
        url=cfg.hapi_base_url,
        ports=(("hapi", cfg.ports.hapi),),
        health_check=_hapi_ready,
        explain_exit=explain_hapi_exit,
    )


def gateway_spec(cfg: LabConfig, say: Say = quiet) -> ServiceSpec:
    return ServiceSpec(
        name="gateway",
        command=(
            sys.executable,
            "-m",
            "gateway",
            "--host",
            cfg.host,
            "--port",
            str(cfg.ports.gateway),
            "--upstream",
            cfg.hapi_base_url,
            "--keycloak",
            cfg.keycloak_url,
            "--public-base",
            cfg.gateway_base_url,
            "--audit-dir",
            str(cfg.audit_dir),
            *(["--policy", str(cfg.gateway_policy)] if cfg.gateway_policy else []),
            *(["--clients", str(cfg.clients_dir)] if cfg.clients_dir else []),
        ),
        health_url=f"http://{cfg.host}:{cfg.ports.gateway}/_gateway/health",
        url=cfg.gateway_base_url,
        ports=(("gateway", cfg.ports.gateway),),
    )


SPEC_BUILDERS = {"keycloak": keycloak_spec, "hapi": hapi_spec, "gateway": gateway_spec}
HEALTH_CHECKS = {"keycloak": _keycloak_ready, "hapi": _hapi_ready, "gateway": status_ok}

"""The lab's three servers as `ServiceSpec`s: what to run, on which ports, and how to tell ready.

Start order matters only for readiness: Keycloak and HAPI start side by side; the gateway needs
neither to start (it fetches Keycloak's keys lazily and forwards to HAPI per request).
"""

from __future__ import annotations

import sys

import httpx

from simulator.stack.artifacts import (
    Say,
    ensure_hapi_jar,
    ensure_keycloak,
    install_smart_provider,
    quiet,
)
from simulator.stack.config import LabConfig
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


def hapi_database_args(cfg: LabConfig) -> list[str]:
    """HAPI's datasource: embedded H2 under the lab's data dir, or the configured JDBC URL."""
    datasource = cfg.hapi_datasource_url or f"jdbc:h2:file:{cfg.data_dir / 'hapi' / 'h2db'}"
    args = [f"--spring.datasource.url={datasource}"]
    if datasource.startswith("jdbc:postgresql:"):
        args += [
            "--spring.datasource.driverClassName=org.postgresql.Driver",
            f"--spring.jpa.properties.hibernate.dialect={POSTGRES_DIALECT}",
        ]
    if cfg.hapi_datasource_username:
        args.append(f"--spring.datasource.username={cfg.hapi_datasource_username}")
    if cfg.hapi_datasource_password:
        args.append(f"--spring.datasource.password={cfg.hapi_datasource_password}")
    return args


def hapi_spec(cfg: LabConfig, say: Say = quiet) -> ServiceSpec:
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
        health_url=f"{cfg.hapi_base_url}/metadata",
        url=cfg.hapi_base_url,
        ports=(("hapi", cfg.ports.hapi),),
        health_check=_hapi_ready,
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
        ),
        health_url=f"http://{cfg.host}:{cfg.ports.gateway}/_gateway/health",
        url=cfg.gateway_base_url,
        ports=(("gateway", cfg.ports.gateway),),
    )


SPEC_BUILDERS = {"keycloak": keycloak_spec, "hapi": hapi_spec, "gateway": gateway_spec}
HEALTH_CHECKS = {"keycloak": _keycloak_ready, "hapi": _hapi_ready, "gateway": status_ok}

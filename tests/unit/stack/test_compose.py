"""docker-compose.yml: valid against the compose spec, and in step with the native stack.

No Docker engine runs here, so the file is checked statically: the schema (compose-spec, as
vendored by check-jsonschema), then each setting that the native stack also defines.
"""

from __future__ import annotations

import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from typing import Any

import pytest
import yaml

from labcore.config import KEYCLOAK_VERSION, REPO_ROOT, Ports
from simulator.stack.services import POSTGRES_DIALECT, keycloak_start_options

COMPOSE = REPO_ROOT / "docker-compose.yml"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def hapi_version() -> str:
    pom = ET.parse(REPO_ROOT / "hapi" / "pom.xml").getroot()
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    version = pom.find("m:properties/m:hapi.version", ns)
    assert version is not None and version.text
    return version.text


def test_valid_against_the_compose_spec() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec",
         str(COMPOSE)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_schema_check_catches_a_broken_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    broken = tmp_path / "docker-compose.yml"
    broken.write_text("services:\n  hapi:\n    image: x\n    ports: 8080\n    restart: sometimes\n")
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec",
         str(broken)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode != 0


def test_server_versions_match_the_native_stack(compose: dict[str, Any]) -> None:
    keycloak = compose["services"]["keycloak"]
    assert keycloak["build"]["args"]["KEYCLOAK_VERSION"] == KEYCLOAK_VERSION
    dockerfile = (REPO_ROOT / "keycloak" / "Dockerfile").read_text()
    assert f"ARG KEYCLOAK_VERSION={KEYCLOAK_VERSION}" in dockerfile
    assert "FROM quay.io/keycloak/keycloak:${KEYCLOAK_VERSION}" in dockerfile
    assert "/opt/keycloak/providers/" in dockerfile, "the SMART provider must be in the image"
    assert re.fullmatch(
        rf"hapiproject/hapi:v{re.escape(hapi_version())}-\d+", compose["services"]["hapi"]["image"]
    )


def test_keycloak_runs_with_the_native_options(compose: dict[str, Any]) -> None:
    kc = compose["services"]["keycloak"]
    ports = Ports()
    expected = keycloak_start_options(
        ports.keycloak, ports.keycloak_management, f"http://keycloak:{ports.keycloak}"
    )
    assert kc["command"][: len(expected)] == expected
    assert f"127.0.0.1:{ports.keycloak}:{ports.keycloak}" in kc["ports"]
    assert f"/{ports.keycloak_management}" in kc["healthcheck"]["test"][1]


def test_hapi_reads_the_shared_application_yaml(compose: dict[str, Any]) -> None:
    hapi = compose["services"]["hapi"]
    mount = "./hapi/application.yaml:/config/application.yaml:ro"
    assert mount in hapi["volumes"]
    assert (
        hapi["environment"]["SPRING_CONFIG_ADDITIONAL_LOCATION"] == "file:/config/application.yaml"
    )
    assert "ports" not in hapi, "HAPI must stay internal; clients go through the gateway"
    native = yaml.safe_load((REPO_ROOT / "hapi" / "application.yaml").read_text())
    dialect = native["spring"]["jpa"]["properties"]["hibernate"]["dialect"]
    assert dialect in hapi["environment"]["SPRING_JPA_PROPERTIES_HIBERNATE_DIALECT"]
    assert native["hapi"]["fhir"]["fhir_version"] == "R4"


def test_gateway_is_the_only_fhir_entry_point(compose: dict[str, Any]) -> None:
    gw = compose["services"]["gateway"]
    port = Ports().gateway
    assert gw["ports"] == [f"127.0.0.1:{port}:{port}"]
    assert "--upstream=http://hapi:8080/fhir" in gw["command"]
    assert (
        f"--public-base={compose['x-python']['environment']['FHIRLAB_GATEWAY_URL']}"
        in gw["command"]
    ), "the token audience must be the URL clients use"
    assert "/_gateway/ready" in " ".join(gw["healthcheck"]["test"])


def test_every_healthy_dependency_has_a_healthcheck(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        for dep, how in (service.get("depends_on") or {}).items():
            assert dep in services, f"{name} depends on unknown {dep}"
            if how.get("condition") == "service_healthy":
                assert "healthcheck" in services[dep], f"{name} waits for {dep}'s health"


def test_image_contains_every_python_package() -> None:
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    for package in ("gateway", "seed", "simulator"):
        assert f"COPY {package} {package}" in dockerfile


def test_postgres_env_file_uses_the_native_dialect() -> None:
    env = dict(
        line.split("=", 1)
        for line in (REPO_ROOT / "compose.postgres.env").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert env["FHIRLAB_HAPI_DIALECT"] == POSTGRES_DIALECT
    assert env["FHIRLAB_HAPI_DATASOURCE_URL"].startswith("jdbc:postgresql://postgres:")

"""docker-compose.yml: valid against the compose spec, and in step with the native stack.

No Docker engine runs here, so the file is checked statically: the schema (compose-spec, as
vendored by check-jsonschema), then each setting that the native stack also defines, with the
values `docker compose` fills in from .env (`effective`). test_compose_lab.py checks the training
lab built on it: the one-shot jobs, the host names, .env.
"""

from __future__ import annotations

import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from labcore.config import KEYCLOAK_VERSION, REPO_ROOT, LabConfig, load_config
from simulator.stack.services import POSTGRES_DIALECT, keycloak_start_options

COMPOSE = REPO_ROOT / "docker-compose.yml"
ENV_FILE = REPO_ROOT / ".env"

# what compose substitutes: $$ (a literal $), ${...} and $NAME
VARIABLE = re.compile(r"\$(?:\$|\{([^}]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
EXPRESSION = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:(:-|-)(.*))?", re.DOTALL)


def dotenv(path: Path = ENV_FILE) -> dict[str, str]:
    """The NAME=value lines of an env file (the plain form this repository uses)."""
    values: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        assert sep and re.fullmatch(r"[A-Z][A-Z0-9_]*", name), f"{path.name}:{number}: {line!r}"
        values[name] = value
    return values


def references(text: str) -> list[tuple[str, str | None, str | None]]:
    """(name, operator, default) of each variable `text` uses; operator `:-`, `-` or None."""
    found = []
    for match in VARIABLE.finditer(text):
        if match.group(0) == "$$":
            continue
        expression = match.group(1) if match.group(1) is not None else match.group(2)
        parsed = EXPRESSION.fullmatch(expression)
        if parsed is None:
            raise ValueError(f"unsupported substitution {match.group(0)!r}")
        found.append((parsed.group(1), parsed.group(2), parsed.group(3)))
    return found


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """`text` as compose fills it in: ${VAR:-default} (unset or empty), ${VAR-default} (unset),
    ${VAR} and $VAR (empty when unset), $$ for a literal $."""

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        ((name, op, default),) = references(match.group(0))
        if op == ":-":
            return env.get(name) or default or ""
        if op == "-":
            return env.get(name, default or "")
        return env.get(name, "")

    return VARIABLE.sub(one, text)


def interpolated(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [interpolated(item, env) for item in node]
    if isinstance(node, dict):
        return {key: interpolated(value, env) for key, value in node.items()}
    return node


def effective_compose(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """docker-compose.yml with the values compose takes from .env (or `env`)."""
    raw = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return interpolated(raw, dotenv() if env is None else env)  # type: ignore[no-any-return]


def native_config() -> LabConfig:
    """The native lab on the ports .env sets."""
    env = dotenv()
    ports = ("FHIRLAB_GATEWAY_PORT", "FHIRLAB_KEYCLOAK_PORT")
    return load_config({name: env[name] for name in ports})


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return effective_compose()


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


def test_interpolation_follows_compose() -> None:
    env = {"SET": "v", "EMPTY": ""}
    assert interpolate("${SET:-d} ${EMPTY:-d} ${UNSET:-d}", env) == "v d d"
    assert interpolate("${SET-d} ${EMPTY-d} ${UNSET-d}", env) == "v  d"
    assert interpolate("$SET ${UNSET} $${SET} a$$b", env) == "v  ${SET} a$b"
    assert references("${A:-1} $$B ${C}") == [("A", ":-", "1"), ("C", None, None)]
    with pytest.raises(ValueError, match="unsupported"):
        references("${A:?required}")


def test_server_versions_match_the_native_stack(compose: dict[str, Any]) -> None:
    keycloak = compose["services"]["keycloak"]
    assert keycloak["build"]["args"]["KEYCLOAK_VERSION"] == KEYCLOAK_VERSION
    dockerfile = (REPO_ROOT / "keycloak" / "Dockerfile").read_text()
    assert f"ARG KEYCLOAK_VERSION={KEYCLOAK_VERSION}" in dockerfile
    assert "FROM quay.io/keycloak/keycloak:${KEYCLOAK_VERSION}" in dockerfile
    assert "/opt/keycloak/providers/" in dockerfile, "the SMART provider must be in the image"
    image = rf"hapiproject/hapi:v{re.escape(hapi_version())}-\d+"
    dockerfile = compose["services"]["hapi"]["build"]["dockerfile_inline"]
    bases = re.findall(r"^FROM (\S+)", dockerfile, re.MULTILINE)
    official = [b for b in bases if b.startswith("hapiproject/")]
    assert official and all(re.fullmatch(image, b) for b in official), bases
    assert bases[-1] in official, "HAPI must run on the official image of its version"


def test_keycloak_runs_with_the_native_options(compose: dict[str, Any]) -> None:
    kc = compose["services"]["keycloak"]
    cfg = native_config()
    ports = cfg.ports
    # the same options, hostname included: the native lab on these ports has the same issuer
    expected = keycloak_start_options(ports.keycloak, ports.keycloak_management, cfg.keycloak_url)
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
    assert dialect == hapi["environment"]["SPRING_JPA_PROPERTIES_HIBERNATE_DIALECT"]
    assert native["hapi"]["fhir"]["fhir_version"] == "R4"
    assert native["hapi"]["fhir"]["bulk_export_enabled"] is True
    heap = f"-Xmx{LabConfig().hapi_heap}"
    assert heap in hapi["environment"]["JAVA_TOOL_OPTIONS"].split(), "the native heap"


def test_hapi_image_runs_the_native_batch2_interval(compose: dict[str, Any]) -> None:
    """The image alone advances a bulk export once a minute (minutes per export); the native
    launcher's BatchJobConfig, added to the image, makes it every few seconds as natively."""
    hapi = compose["services"]["hapi"]
    context = (REPO_ROOT / hapi["build"]["context"]).resolve()
    dockerfile = hapi["build"]["dockerfile_inline"]
    (source,) = re.findall(r"^COPY (src/\S+\.java) ", dockerfile, re.MULTILINE)
    java = (context / source).read_text(encoding="utf-8")
    assert "class BatchJobConfig" in java and "setScheduledJobFrequencyMillis" in java
    package = re.search(r"^package ([\w.]+);", java, re.MULTILINE)
    assert package, source
    # the image's starter scans these packages, among its extra classes, for Spring beans
    assert hapi["environment"]["HAPI_FHIR_CUSTOM_BEAN_PACKAGES"] == package.group(1)
    assert re.search(r"^COPY --from=\S+ \S+ /app/extra-classes/$", dockerfile, re.MULTILINE)
    key = re.search(r'INTERVAL_KEY = "([\w.]+)"', java)
    assert key, "the class reads its interval from a key"
    settings: Any = yaml.safe_load((REPO_ROOT / "hapi" / "application.yaml").read_text())
    for part in key.group(1).split("."):
        settings = settings[part]
    assert 1000 <= int(settings) < 60_000, "shorter than HAPI's one-minute pass"
    raw = yaml.safe_load(COMPOSE.read_text())["services"]["hapi"]["build"]["dockerfile_inline"]
    assert "$" not in raw, "compose would interpolate a $ in the inline Dockerfile"


def test_gateway_is_the_only_fhir_entry_point(compose: dict[str, Any]) -> None:
    services = compose["services"]
    gw = services["gateway"]
    port = native_config().ports.gateway
    published = [p for s in services.values() for p in s.get("ports", [])]
    assert f"127.0.0.1:{port}:{port}" in published
    assert f"--port={port}" in gw["command"]
    assert "--upstream=http://hapi:8080/fhir" in gw["command"]
    assert (
        f"--public-base={compose['x-python']['environment']['FHIRLAB_GATEWAY_URL']}"
        in gw["command"]
    ), "the token audience must be the URL clients use"
    assert "/_gateway/ready" in " ".join(gw["healthcheck"]["test"])
    assert f":{port}/_gateway/ready" in " ".join(gw["healthcheck"]["test"])


def test_every_healthy_dependency_has_a_healthcheck(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        for dep, how in (service.get("depends_on") or {}).items():
            assert dep in services, f"{name} depends on unknown {dep}"
            if how.get("condition") == "service_healthy":
                assert "healthcheck" in services[dep], f"{name} waits for {dep}'s health"


def test_image_contains_every_python_package() -> None:
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    for package in ("labcore", "gateway", "seed", "simulator"):
        assert f"COPY {package} {package}" in dockerfile


def test_postgres_env_file_uses_the_native_dialect() -> None:
    env = dotenv(REPO_ROOT / "compose.postgres.env")
    assert env["FHIRLAB_HAPI_DIALECT"] == POSTGRES_DIALECT
    assert env["FHIRLAB_HAPI_DATASOURCE_URL"].startswith("jdbc:postgresql://postgres:")
    hapi = effective_compose({**dotenv(), **env})["services"]["hapi"]["environment"]
    assert hapi["SPRING_JPA_PROPERTIES_HIBERNATE_DIALECT"] == POSTGRES_DIALECT
    assert hapi["SPRING_DATASOURCE_URL"] == env["FHIRLAB_HAPI_DATASOURCE_URL"]

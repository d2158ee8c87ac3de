"""Where the lab lives and which ports it uses: one frozen object, read from FHIRLAB_* variables.

Defaults: gateway 8080 (the only FHIR entry point clients see, at /fhir), Keycloak 8180 (its
management/health interface on 9180), HAPI 8280 (internal). Everything binds to 127.0.0.1.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from labcore.errors import LabError

REPO_ROOT = Path(__file__).resolve().parents[1]

KEYCLOAK_VERSION = "26.5.6"

# Demo-only credentials for the Keycloak bootstrap admin: never use them outside the lab.
DEMO_ADMIN_USER = "admin"
DEMO_ADMIN_PASSWORD = "admin"


@dataclass(frozen=True)
class Ports:
    gateway: int = 8080
    keycloak: int = 8180
    keycloak_management: int = 9180
    hapi: int = 8280

    def items(self) -> list[tuple[str, int]]:
        return [
            ("gateway", self.gateway),
            ("keycloak", self.keycloak),
            ("keycloak_management", self.keycloak_management),
            ("hapi", self.hapi),
        ]


@dataclass(frozen=True)
class LabConfig:
    """Everything `fhirlab up` needs to know; derived paths are properties, not state."""

    home: Path = REPO_ROOT / ".lab"
    cache: Path = Path.home() / ".cache" / "fhirlab"
    repo: Path = REPO_ROOT
    ports: Ports = field(default_factory=Ports)
    host: str = "127.0.0.1"
    keycloak_version: str = KEYCLOAK_VERSION
    admin_user: str = DEMO_ADMIN_USER
    admin_password: str = DEMO_ADMIN_PASSWORD
    hapi_heap: str = "1g"
    keycloak_heap: str = "512m"
    hapi_datasource_url: str | None = None  # None: embedded H2 under home/hapi
    hapi_datasource_username: str | None = None
    hapi_datasource_password: str | None = None
    start_timeout_s: float = 600.0
    gateway_policy: Path | None = None  # None: gateway/policy.yaml
    # your own configuration: client profiles over keycloak/clients/ (by client_id), and a
    # scenario library instead of scenarios/
    clients_dir: Path | None = None
    scenarios_dir: Path | None = None
    # external: the servers run elsewhere (docker compose, your own); the lab only uses them.
    external: bool = False
    url_overrides: Mapping[str, str] = field(default_factory=dict)

    # ---- derived locations -------------------------------------------------------------
    @property
    def run_dir(self) -> Path:
        return self.home / "run"

    @property
    def log_dir(self) -> Path:
        return self.home / "logs"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def audit_dir(self) -> Path:
        return self.home / "audit"

    @property
    def keycloak_url(self) -> str:
        return self.url_overrides.get("keycloak") or f"http://localhost:{self.ports.keycloak}"

    @property
    def keycloak_health_url(self) -> str:
        return (
            self.url_overrides.get("keycloak_health")
            or f"http://{self.host}:{self.ports.keycloak_management}/health/ready"
        )

    @property
    def hapi_base_url(self) -> str:
        return self.url_overrides.get("hapi") or f"http://{self.host}:{self.ports.hapi}/fhir"

    @property
    def gateway_base_url(self) -> str:
        return self.url_overrides.get("gateway") or f"http://localhost:{self.ports.gateway}/fhir"

    def issuer(self, realm: str) -> str:
        return f"{self.keycloak_url}/realms/{realm}"

    def with_home(self, home: Path) -> LabConfig:
        return replace(self, home=home)


_PORT_VARS = {
    "gateway": "FHIRLAB_GATEWAY_PORT",
    "keycloak": "FHIRLAB_KEYCLOAK_PORT",
    "keycloak_management": "FHIRLAB_KEYCLOAK_MANAGEMENT_PORT",
    "hapi": "FHIRLAB_HAPI_PORT",
}


def port_variable(name: str) -> str:
    """The environment variable that sets the port called `name` (for error hints)."""
    return _PORT_VARS[name]


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    var = _PORT_VARS[name]
    raw = env.get(var)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise LabError(f"{var}={raw!r} is not a port number", f"set {var} to 1-65535") from None
    if not 1 <= value <= 65535:
        raise LabError(f"{var}={value} is out of range", f"set {var} to 1-65535")
    return value


_URL_VARS = {
    "gateway": "FHIRLAB_GATEWAY_URL",
    "hapi": "FHIRLAB_HAPI_URL",
    "keycloak": "FHIRLAB_KEYCLOAK_URL",
    "keycloak_health": "FHIRLAB_KEYCLOAK_HEALTH_URL",
}


def _stack_mode(env: Mapping[str, str]) -> bool:
    mode = env.get("FHIRLAB_STACK", "native") or "native"
    if mode not in ("native", "external"):
        raise LabError(
            f"FHIRLAB_STACK={mode!r} is not a stack mode",
            "use native (the lab starts the servers) or external (they already run)",
        )
    return mode == "external"


def load_config(env: Mapping[str, str] | None = None) -> LabConfig:
    """Build the lab configuration from FHIRLAB_* variables over the defaults."""
    env = os.environ if env is None else env
    base = LabConfig()
    ports = Ports(**{name: _port(env, name, default) for name, default in Ports().items()})
    clash = {p for _, p in ports.items() if [q for _, q in ports.items()].count(p) > 1}
    if clash:
        raise LabError(
            f"the lab's ports must differ; {sorted(clash)} is used twice",
            "give each FHIRLAB_*_PORT its own value",
        )
    return replace(
        base,
        home=Path(env.get("FHIRLAB_HOME") or base.home).expanduser().resolve(),
        cache=Path(env.get("FHIRLAB_CACHE") or base.cache).expanduser().resolve(),
        ports=ports,
        hapi_heap=env.get("FHIRLAB_HAPI_HEAP") or base.hapi_heap,
        keycloak_heap=env.get("FHIRLAB_KEYCLOAK_HEAP") or base.keycloak_heap,
        hapi_datasource_url=env.get("FHIRLAB_HAPI_DATASOURCE_URL") or None,
        hapi_datasource_username=env.get("FHIRLAB_HAPI_DATASOURCE_USERNAME") or None,
        hapi_datasource_password=env.get("FHIRLAB_HAPI_DATASOURCE_PASSWORD") or None,
        start_timeout_s=_seconds(env, "FHIRLAB_START_TIMEOUT", base.start_timeout_s),
        gateway_policy=_path(env, "FHIRLAB_GATEWAY_POLICY"),
        clients_dir=_path(env, "FHIRLAB_CLIENTS"),
        scenarios_dir=_path(env, "FHIRLAB_SCENARIOS"),
        external=_stack_mode(env),
        url_overrides={k: env[v].rstrip("/") for k, v in _URL_VARS.items() if env.get(v)},
    )


def _path(env: Mapping[str, str], var: str) -> Path | None:
    raw = env.get(var)
    return Path(raw).expanduser().resolve() if raw else None


def _seconds(env: Mapping[str, str], var: str, default: float) -> float:
    raw = env.get(var)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value <= 0:
        raise LabError(f"{var}={raw!r} is not a positive number of seconds", f"e.g. {var}=900")
    return value

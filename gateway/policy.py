"""The gateway policy (gateway/policy.yaml), validated once at start."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gateway.controls import CONTROLS, Mode, ModeField
from labcore.yamlfile import load_model

POLICY_FILE = Path(__file__).with_name("policy.yaml")
CLOCK_HEADER = "clock_header"
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
RUNTIME_CONTROLS = ("C01", "C02", "C03", "C04", "C05", "C06", "C08", "C09", "C10", "C12")


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TokenPolicy(_Strict):
    enabled: bool = True  # false only to measure the bare proxy (every control off)
    algorithms: tuple[str, ...] = ("RS256",)
    leeway_s: int = Field(default=30, ge=0, le=300)
    jwks_ttl_s: int = Field(default=300, ge=1)
    introspection_ttl_s: int = Field(default=10, ge=0)


class ClientPolicy(_Strict):
    operational_classes: tuple[str, ...] = ("operational-ai",)
    max_token_lifetime_s: int = Field(default=900, ge=1)


class OperationsPolicy(_Strict):
    export_clients: tuple[str, ...] = ()
    restricted: tuple[str, ...] = ("$everything", "$validate", "$export")
    restricted_clients: tuple[str, ...] = ()
    max_count: int = Field(default=200, ge=1)

    @field_validator("restricted")
    @classmethod
    def _dollar(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for op in value:
            if not op.startswith("$"):
                raise ValueError(f"operation {op!r} must start with $")
        return value


class RateLimitPolicy(_Strict):
    enabled: bool = True
    requests_per_second: float = Field(default=50, gt=0)
    burst: int = Field(default=100, ge=1)


class AuditPolicy(_Strict):
    fhir_audit_events: bool = False


class Policy(_Strict):
    schema_version: Literal[1]
    controls: dict[str, ModeField]
    token: TokenPolicy = TokenPolicy()
    client_policy: ClientPolicy = ClientPolicy()
    operations: OperationsPolicy = OperationsPolicy()
    rate_limit: RateLimitPolicy = RateLimitPolicy()
    # detector name -> its settings (gateway/anomaly/engine.py), plus `clock_header` (LAB ONLY:
    # the request header carrying a simulated instant for the detectors, gateway/clock.py)
    anomaly: dict[str, Any] = Field(default_factory=dict)
    audit: AuditPolicy = AuditPolicy()

    @field_validator("anomaly")
    @classmethod
    def _anomaly_sections(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name, section in value.items():
            if name == CLOCK_HEADER:
                if section is not None and not (
                    isinstance(section, str) and _HEADER_NAME.fullmatch(section)
                ):
                    raise ValueError(f"anomaly.clock_header must be a header name, got {section!r}")
            elif section is not None and not isinstance(section, dict):
                raise ValueError(f"anomaly.{name} must be a mapping of settings, got {section!r}")
        return value

    @property
    def clock_header(self) -> str | None:
        """The lab's simulated-clock header, or None (disabled, the default)."""
        return self.anomaly.get(CLOCK_HEADER)

    @property
    def detectors(self) -> dict[str, dict[str, Any]]:
        """The anomaly section without `clock_header`: the detectors' settings."""
        return {k: v or {} for k, v in self.anomaly.items() if k != CLOCK_HEADER}

    @field_validator("controls")
    @classmethod
    def _known_controls(cls, value: dict[str, Mode]) -> dict[str, Mode]:
        for control in value:
            if control not in CONTROLS:
                raise ValueError(f"unknown control {control!r}; controls are C01..C12")
            if control not in RUNTIME_CONTROLS:
                raise ValueError(
                    f"{control} is a configuration control (audited against Keycloak), "
                    "it has no run-time mode"
                )
        return value

    def mode(self, control: str) -> Mode:
        return self.controls.get(control, Mode.OFF)

    def with_modes(self, modes: dict[str, Mode]) -> Policy:
        """A copy with some controls switched (for the controls matrix)."""
        return self.model_copy(update={"controls": {**self.controls, **modes}})


def load_policy(path: Path = POLICY_FILE) -> Policy:
    return load_model(path, Policy)

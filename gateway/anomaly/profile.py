"""`out_of_profile`: a client touching resource types outside its declared profile (C05).

The profile maps a client id to the resource types it is expected to use, derived by the
caller from the client's registered scopes (`profiles_from_scopes`); `*` allows every type.
A scheduling assistant registered for Patient, Appointment and Schedule that reads Condition
is out of profile — even when a wildcard grant let the request through. Clients without a
profile are not checked unless `unknown_clients` is `alert`. Requests without a resource type
(capabilities, batch, system search) are not checked; a compartment search over every type
(`Patient/1/*`) has type `*` and needs `*` in the profile.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from gateway.anomaly.base import Alert, AlertFactory, Severity, client_key
from gateway.anomaly.config import ConfigError, require
from gateway.anomaly.windows import Cooldown
from gateway.audit.record import AuditRecord
from labcore.scopes import parse_scopes

__all__ = ["OutOfProfileDetector", "ProfileConfig", "profiles_from_scopes"]


def profiles_from_scopes(scopes: Mapping[str, str]) -> dict[str, frozenset[str]]:
    """client id -> the resource types its registered scope string names (`*` included when
    a wildcard scope is granted)."""
    return {client: parse_scopes(text).resource_types for client, text in scopes.items()}


@dataclass(frozen=True, slots=True)
class ProfileConfig:
    profiles: Mapping[str, frozenset[str]] = field(default_factory=dict)
    unknown_clients: Literal["ignore", "alert"] = "ignore"
    cooldown_s: float = 3600.0
    max_keys: int = 10_000

    def __post_init__(self) -> None:
        require(
            self.unknown_clients in ("ignore", "alert"),
            "unknown_clients",
            f"must be 'ignore' or 'alert', got {self.unknown_clients!r}",
        )
        require(self.cooldown_s >= 0, "cooldown_s", f"must be >= 0, got {self.cooldown_s}")
        require(self.max_keys >= 1, "max_keys", f"must be >= 1, got {self.max_keys}")

    @staticmethod
    def convert_profiles(value: Any, key: str) -> dict[str, frozenset[str]]:
        if not isinstance(value, Mapping):
            raise ConfigError(key, "must map client ids to lists of resource types")
        profiles: dict[str, frozenset[str]] = {}
        for client, types in value.items():
            if not isinstance(client, str) or not client:
                raise ConfigError(key, f"client id {client!r} must be a non-empty string")
            if isinstance(types, str) or not isinstance(types, Collection):
                raise ConfigError(f"{key}.{client}", "must be a list of resource types")
            if not all(isinstance(t, str) and t for t in types):
                raise ConfigError(f"{key}.{client}", "resource types must be non-empty strings")
            profiles[client] = frozenset(types)
        return profiles


class OutOfProfileDetector:
    """Resource types outside the client's declared profile; once per (client, type)."""

    name = "out_of_profile"

    def __init__(self, config: ProfileConfig | None = None) -> None:
        self.config = config = config or ProfileConfig()
        self._profiles = {client: frozenset(types) for client, types in config.profiles.items()}
        self._cooldown = Cooldown(config.cooldown_s, config.max_keys)
        self._alert = AlertFactory(self.name)

    def observe(self, record: AuditRecord) -> list[Alert]:
        resource_type = record.resource_type
        if not resource_type:
            return []
        if resource_type == "Binary" and record.interaction in ("read", "vread"):
            # a bulk-export file: what it holds was judged at kick-off (`_type`) and line by line
            # (C05, C10), not a type the client reads for itself
            return []
        allowed = self._profiles.get(record.client_id or "")
        if allowed is None:
            if self.config.unknown_clients == "ignore":
                return []
            allowed = frozenset()
        if "*" in allowed or resource_type in allowed:
            return []
        key = client_key(record)
        if not self._cooldown.ready((key, resource_type), record.ts):
            return []
        served = record.status < 400 and record.decision != "deny"
        severity: Severity = "high" if served else "medium"
        profile = ", ".join(sorted(allowed)) or "none declared"
        message = (
            f"client {key} {'used' if served else 'tried'} {resource_type} "
            f"({record.interaction or record.method}), outside its profile ({profile})"
        )
        evidence = {
            "key": key,
            "resource_type": resource_type,
            "interaction": record.interaction,
            "profile": sorted(allowed),
            "served": served,
            "status": record.status,
            "request_ids": [record.request_id],
        }
        return [self._alert(record, severity, message, evidence)]

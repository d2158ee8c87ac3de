"""The down-scoping probe (control C11): ask for more than registered, record what the AS does."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from simulator.smart.client import SmartClient
from simulator.smart.errors import SmartError

Outcome = Literal["refused", "down-scoped", "granted"]


@dataclass(frozen=True)
class ProbeResult:
    requested: tuple[str, ...]
    outcome: Outcome
    granted: tuple[str, ...]
    error: str | None

    @property
    def held(self) -> bool:
        """C11 holds if the AS did not grant anything beyond what was registered."""
        return self.outcome != "granted"


def classify(requested: tuple[str, ...], granted: tuple[str, ...]) -> Outcome:
    return "granted" if set(requested) <= set(granted) else "down-scoped"


def probe_client_credentials(client: SmartClient, scope: str) -> ProbeResult:
    requested = tuple(scope.split())
    try:
        token = client.client_credentials(scope)
    except SmartError as exc:
        return ProbeResult(requested, "refused", (), exc.error)
    return ProbeResult(
        requested, classify(requested, token.granted_scopes), token.granted_scopes, None
    )


def probe_authorization_code(
    client: SmartClient, username: str, password: str, scope: str
) -> ProbeResult:
    requested = tuple(scope.split())
    try:
        token = client.authorization_code(username, password, scope)
    except SmartError as exc:
        return ProbeResult(requested, "refused", (), exc.error)
    return ProbeResult(
        requested, classify(requested, token.granted_scopes), token.granted_scopes, None
    )

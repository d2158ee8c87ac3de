"""What a token response gave a client: the token and what it really grants."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass, field
from typing import Any


def jwt_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT, unverified: for inspecting what the server issued, never for trust."""
    try:
        part = token.split(".")[1]
        decoded = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (IndexError, ValueError):
        return {}
    return decoded if isinstance(decoded, dict) else {}


@dataclass(frozen=True)
class Token:
    access_token: str
    token_type: str
    scope: str
    expires_in: int | None
    refresh_token: str | None = None
    id_token: str | None = None
    patient: str | None = None
    encounter: str | None = None
    received_at: float = field(default_factory=time.time)
    response: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_response(cls, body: dict[str, Any]) -> Token:
        return cls(
            access_token=str(body["access_token"]),
            token_type=str(body.get("token_type", "")),
            scope=str(body.get("scope", "")),
            expires_in=int(body["expires_in"]) if "expires_in" in body else None,
            refresh_token=body.get("refresh_token"),
            id_token=body.get("id_token"),
            patient=body.get("patient"),
            encounter=body.get("encounter"),
            response=body,
        )

    @property
    def claims(self) -> dict[str, Any]:
        return jwt_claims(self.access_token)

    @property
    def granted_scopes(self) -> tuple[str, ...]:
        return tuple(self.scope.split())

    @property
    def lifetime_s(self) -> int | None:
        """exp - iat of the access token (what the server actually issued)."""
        claims = self.claims
        if "exp" in claims and "iat" in claims:
            return int(claims["exp"]) - int(claims["iat"])
        return self.expires_in

    @property
    def expires_at(self) -> float | None:
        exp = self.claims.get("exp")
        return float(exp) if exp is not None else None

    @property
    def has_refresh_token(self) -> bool:
        return bool(self.refresh_token)

    @property
    def is_offline(self) -> bool:
        """The refresh token is an offline token (survives the user's session)."""
        return bool(self.refresh_token) and jwt_claims(self.refresh_token or "").get("typ") == (
            "Offline"
        )

"""The exposure window: how long a credential taken at the end of the session stays usable.

Measured from the run, not read from configuration: the access token counts with its real
lifetime (`exp - iat`) only if replaying it after the session end was accepted; the refresh
token counts with its remaining validity only if a refresh after the session end succeeded.
"""

from __future__ import annotations

from typing import Any

from simulator.replay.model import ExposureWindow


def exposure_window(
    *,
    access_lifetime_s: float | None,
    replay_accepted: bool | None,
    refresh_succeeded: bool | None,
    refresh_claims: dict[str, Any] | None,
    now: float,
    cached_s: float = 0.0,
) -> ExposureWindow:
    """Combine the measured parts; `refresh_claims` are the kept refresh token's JWT claims.

    `cached_s`: a replay right after revocation was accepted, a later one refused: the revoked
    token stayed usable about that long (the gateway's introspection cache)."""
    access = float(access_lifetime_s or 0) if replay_accepted else float(cached_s)
    if not refresh_succeeded:
        note = "nothing usable after the session"
        if access:
            note = "access token replay accepted" if replay_accepted else "until the cache expired"
        return ExposureWindow(access, access, 0.0, False, note)
    claims = refresh_claims or {}
    offline = claims.get("typ") == "Offline"
    exp = claims.get("exp")
    if exp is None:
        note = "offline: until revoked" if offline else "refresh token without expiry"
        return ExposureWindow(None, access, 0.0, offline, note)
    refresh = max(0.0, float(exp) - now)
    note = "offline: until revoked" if offline else "refresh token usable after the session"
    return ExposureWindow(access + refresh, access, refresh, offline, note)

"""The lab's simulated EHR: it mints the `launch` handle of an EHR launch.

The handle is a short-lived HS256 JWS naming the patient (and encounter) and the client it is for,
signed with the tenant's launch secret; Keycloak's SMART launch authenticator verifies it and binds
that patient to the session. The client only carries the handle: it cannot choose the patient.
"""

from __future__ import annotations

import secrets
import time

from joserfc import jwt
from joserfc.jwk import OctKey

from labcore.tenants import Tenant


def mint_launch(
    tenant: Tenant,
    client_id: str,
    patient: str,
    encounter: str | None = None,
    ttl_s: int = 120,
    secret: str | None = None,
    now: float | None = None,
) -> str:
    """A launch handle for `client_id` to open `patient`'s chart (`secret` overrides, for tests)."""
    issued = int(now if now is not None else time.time())
    claims: dict[str, object] = {
        "iss": f"urn:fhirlab:ehr:{tenant.id}",
        "aud": client_id,
        "patient": patient,
        "iat": issued,
        "exp": issued + ttl_s,
        "jti": secrets.token_hex(12),
    }
    if encounter:
        claims["encounter"] = encounter
    key = OctKey.import_key((secret or tenant.launch_secret).encode())
    return jwt.encode({"alg": "HS256", "typ": "JWT"}, claims, key)

"""Client key pairs for `private_key_jwt` (SMART backend services), kept in the lab directory.

A client's private key never leaves `<lab>/keys/<tenant>/<client_id>.jwk.json` (mode 600); its
public half is registered in Keycloak as the client's JWKS by `fhirlab clients apply`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from joserfc.jwk import RSAKey

SIGNING_ALG = "RS384"  # SMART Backend Services: RS384 or ES384


def key_path(home: Path, tenant: str, client_id: str) -> Path:
    return home / "keys" / tenant / f"{client_id}.jwk.json"


def client_key(home: Path, tenant: str, client_id: str) -> RSAKey:
    """The client's RSA key, generated on first use."""
    path = key_path(home, tenant, client_id)
    if path.exists():
        return RSAKey.import_key(json.loads(path.read_text()))
    key = RSAKey.generate_key(
        2048,
        parameters={"kid": f"{tenant}.{client_id}.1", "alg": SIGNING_ALG, "use": "sig"},
        private=True,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(key.as_dict(private=True), fh)
    tmp.replace(path)
    return key


def public_jwks(key: RSAKey) -> dict[str, Any]:
    return {"keys": [key.as_dict(private=False)]}

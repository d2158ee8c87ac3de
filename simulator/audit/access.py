"""What the user lets `fhirlab audit` use beyond anonymous reads: a client registration (and a test
user to log in with), Keycloak admin access, a second tenant's token, the opt-in steps."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from joserfc.errors import JoseError
from joserfc.jwk import RSAKey

from labcore.errors import LabError
from simulator.smart.auth import ClientAuth, ClientSecret, PrivateKeyJwt, PublicClient

DEFAULT_SCOPE: Final = "openid launch/patient patient/Patient.rs"
DEFAULT_REDIRECT: Final = "http://localhost:9999/callback"


@dataclass(frozen=True, slots=True)
class ClientAccess:
    """A client registration the audit may ask for tokens, as the app itself would."""

    client_id: str
    secret: str | None = None  # client_secret_basic
    key_file: Path | None = None  # private_key_jwt: a private JWK (JSON) or a PEM key
    user: str | None = None  # a test user: the authorization code flow (else client_credentials)
    password: str | None = None
    scope: str = DEFAULT_SCOPE  # what the app asks for in use
    redirect_uri: str = DEFAULT_REDIRECT

    @property
    def confidential(self) -> bool:
        return self.secret is not None or self.key_file is not None

    def auth(self) -> ClientAuth:
        if self.key_file is not None:
            return PrivateKeyJwt(self.client_id, _private_key(self.key_file))
        if self.secret is not None:
            return ClientSecret(self.client_id, self.secret)
        return PublicClient(self.client_id)


@dataclass(frozen=True, slots=True)
class AdminAccess:
    """Keycloak admin access: the registration data behind C06, C07 and C10."""

    url: str  # Keycloak's base URL, e.g. http://localhost:8180
    user: str
    password: str


def _private_key(path: Path) -> RSAKey:
    try:
        text = path.read_text()
    except OSError as exc:
        raise LabError(f"cannot read the client key {path} ({exc.strerror})") from None
    try:
        data = json.loads(text) if text.lstrip().startswith("{") else text.encode()
        key = RSAKey.import_key(data)
    except (ValueError, JoseError) as exc:
        raise LabError(
            f"{path} is not an RSA private key ({exc})", "give a private JWK (JSON) or a PEM key"
        ) from None
    if not key.is_private:
        raise LabError(f"{path} holds a public key only", "private_key_jwt needs the private key")
    return key

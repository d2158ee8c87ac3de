"""How a client authenticates at the token endpoint: public, client secret, private_key_jwt."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Protocol

import httpx
from joserfc import jwt
from joserfc.jwk import RSAKey

from simulator.smart.keys import SIGNING_ALG

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


class ClientAuth(Protocol):
    client_id: str

    def apply(self, form: dict[str, str], token_endpoint: str) -> httpx.BasicAuth | None:
        """Add credentials to a token-endpoint form; may return HTTP basic auth to send."""
        ...


@dataclass(frozen=True)
class PublicClient:
    client_id: str

    def apply(self, form: dict[str, str], token_endpoint: str) -> httpx.BasicAuth | None:
        form["client_id"] = self.client_id
        return None


@dataclass(frozen=True)
class ClientSecret:
    """client_secret_basic (RFC 6749 §2.3.1)."""

    client_id: str
    secret: str

    def apply(self, form: dict[str, str], token_endpoint: str) -> httpx.BasicAuth | None:
        return httpx.BasicAuth(self.client_id, self.secret)


@dataclass(frozen=True)
class PrivateKeyJwt:
    """private_key_jwt (RFC 7523) as SMART Backend Services uses it: a fresh signed assertion
    per request, `jti` unique, `exp` at most five minutes ahead, `aud` the token endpoint."""

    client_id: str
    key: RSAKey
    lifetime_s: int = 240
    audience: str | None = None  # default: the token endpoint

    def assertion(
        self, token_endpoint: str, now: float | None = None, jti: str | None = None
    ) -> str:
        issued = int(now if now is not None else time.time())
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": self.audience or token_endpoint,
            "jti": jti or secrets.token_urlsafe(24),
            "iat": issued,
            "exp": issued + self.lifetime_s,
        }
        header = {"alg": SIGNING_ALG, "typ": "JWT", "kid": str(self.key.kid)}
        return jwt.encode(header, claims, self.key, algorithms=[SIGNING_ALG])

    def apply(self, form: dict[str, str], token_endpoint: str) -> httpx.BasicAuth | None:
        form["client_id"] = self.client_id
        form["client_assertion_type"] = ASSERTION_TYPE
        form.setdefault("client_assertion", self.assertion(token_endpoint))
        return None

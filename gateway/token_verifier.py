"""Bearer token verification: local JWT checks (JWKS, cached), and RFC 7662 introspection.

Every token is verified locally (signature against the issuer's JWKS, `iss`, `aud`, `exp`, `nbf`).
That is fast but blind to revocation: a revoked JWT stays valid until `exp`. Introspection asks
Keycloak whether the token is still active, at the price of a round trip per token per
`introspection_ttl_s`; the gateway does it when control C09 is on. That is the lab's revocation
trade-off. Both fail closed: a token that cannot be verified — unknown issuer, bad signature, JWKS
or introspection unreachable — is never forwarded.
"""

from __future__ import annotations

import base64
import json
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from gateway.audit import token_id
from gateway.denial import Denial, unauthorized
from gateway.settings import TenantIssuer
from labcore.scopes import ScopeSet, parse_scopes

_CACHE_SIZE = 20_000


class Clock(Protocol):
    """Where the verifier reads the time: the `time` module, or a test's clock."""

    def time(self) -> float: ...

    def monotonic(self) -> float: ...


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    token_id: str  # the jti, or a hash of the token: what the audit log records, never the token
    issuer: str
    tenant: str
    client_id: str
    subject: str
    scopes: ScopeSet
    patient: str | None
    encounter: str | None
    issued_at: int | None
    expires_at: int
    jti: str | None

    @property
    def lifetime_s(self) -> int | None:
        return self.expires_at - self.issued_at if self.issued_at is not None else None


def _b64json(part: str) -> dict[str, Any]:
    try:
        value = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (ValueError, TypeError):
        raise unauthorized("the bearer token is not a well-formed JWT") from None
    if not isinstance(value, dict):
        raise unauthorized("the bearer token is not a well-formed JWT")
    return value


def peek(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims of a compact JWT, unverified (to pick the issuer's keys)."""
    parts = token.split(".")
    if len(parts) != 3 or not all(parts[:2]):
        raise unauthorized("the bearer token is not a well-formed JWT")
    return _b64json(parts[0]), _b64json(parts[1])


def _as_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise unauthorized(f"the token's {name} claim is missing or not a number")
    return int(value)


def to_verified(token: str, claims: dict[str, Any], issuer: TenantIssuer) -> VerifiedToken:
    return VerifiedToken(
        token_id=token_id(token, str(claims["jti"]) if claims.get("jti") else None),
        issuer=issuer.issuer,
        tenant=issuer.tenant,
        client_id=str(claims.get("azp") or claims.get("client_id") or ""),
        subject=str(claims.get("sub") or ""),
        scopes=parse_scopes(str(claims.get("scope") or "")),
        patient=claims.get("patient") if isinstance(claims.get("patient"), str) else None,
        encounter=claims.get("encounter") if isinstance(claims.get("encounter"), str) else None,
        issued_at=_as_int(claims["iat"], "iat") if "iat" in claims else None,
        expires_at=_as_int(claims.get("exp"), "exp"),
        jti=str(claims["jti"]) if claims.get("jti") else None,
    )


class _Lru(OrderedDict[str, VerifiedToken]):
    def get_fresh(self, key: str, now: float) -> VerifiedToken | None:
        found = self.get(key)
        if found is None:
            return None
        if found.expires_at <= now:
            del self[key]
            return None
        self.move_to_end(key)
        return found

    def put(self, key: str, value: VerifiedToken) -> None:
        self[key] = value
        if len(self) > _CACHE_SIZE:
            self.popitem(last=False)


class JwksCache:
    """Each issuer's signing keys, fetched lazily, kept `ttl_s`, refetched on an unknown `kid`
    (key rotation) at most every `min_refetch_s`."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        ttl_s: float,
        min_refetch_s: float = 10.0,
        clock: Clock = time,
    ):
        self.http = http
        self.ttl_s = ttl_s
        self.min_refetch_s = min_refetch_s
        self.clock = clock
        self._keys: dict[str, tuple[KeySet, set[str], float]] = {}
        self._failed: dict[str, float] = {}  # issuer -> when its last fetch failed

    async def _fetch(self, issuer: TenantIssuer) -> tuple[KeySet, set[str], float]:
        # a client picks the `kid`: while the issuer's JWKS cannot be fetched, it is asked again
        # at most every min_refetch_s, not once per request
        failed = self._failed.get(issuer.issuer)
        if failed is not None and self.clock.monotonic() - failed < self.min_refetch_s:
            raise Denial(503, f"cannot fetch the signing keys of {issuer.issuer} (failed lately)")
        try:
            resp = await self.http.get(issuer.jwks_uri, timeout=5.0)
            resp.raise_for_status()
            keys = KeySet.import_key_set(resp.json())
        except (httpx.HTTPError, ValueError, TypeError, KeyError, JoseError) as exc:
            # not reachable, not JSON, not a JWK Set (a list, keys that are not objects)
            self._failed[issuer.issuer] = self.clock.monotonic()
            raise Denial(
                503, f"cannot fetch the signing keys of {issuer.issuer} ({type(exc).__name__})"
            ) from exc
        entry = (keys, {str(k.kid) for k in keys.keys}, self.clock.monotonic())
        self._keys[issuer.issuer] = entry
        self._failed.pop(issuer.issuer, None)
        return entry

    async def keys_for(self, issuer: TenantIssuer, kid: str | None) -> KeySet:
        entry = self._keys.get(issuer.issuer)
        now = self.clock.monotonic()
        stale = entry is None or now - entry[2] > self.ttl_s
        rotated = (
            entry is not None
            and kid is not None
            and kid not in entry[1]
            and now - entry[2] > self.min_refetch_s
        )
        if entry is None or stale or rotated:
            entry = await self._fetch(issuer)
        return entry[0]


class TokenVerifier:
    """Verifies bearer tokens for the configured tenant issuers, in jwt or introspection mode."""

    def __init__(
        self,
        issuers: list[TenantIssuer],
        audience: str,
        http: httpx.AsyncClient,
        algorithms: tuple[str, ...] = ("RS256",),
        leeway_s: int = 30,
        jwks_ttl_s: float = 300,
        introspection_ttl_s: float = 10,
        clock: Clock = time,
    ) -> None:
        self.issuers = {i.issuer: i for i in issuers}
        self.audience = audience
        self.http = http
        self.algorithms = algorithms
        self.leeway_s = leeway_s
        self.introspection_ttl_s = introspection_ttl_s
        self.clock = clock
        self.jwks = JwksCache(http, jwks_ttl_s, clock=clock)
        self._verified = _Lru()
        self._introspected: dict[str, tuple[bool, float]] = {}

    async def verify(self, token: str) -> VerifiedToken:
        now = self.clock.time()
        cached = self._verified.get_fresh(token, now - self.leeway_s)
        if cached is not None:
            return cached
        header, claims = peek(token)
        issuer = self._issuer(claims)
        if header.get("alg") not in self.algorithms:
            raise unauthorized(f"token algorithm {header.get('alg')!r} is not accepted")
        keys = await self.jwks.keys_for(issuer, header.get("kid"))
        try:
            jws.deserialize_compact(token, keys, algorithms=list(self.algorithms))
        except JoseError:
            raise unauthorized("the token's signature does not verify") from None
        verified = self._check_claims(token, claims, issuer, now)
        self._verified.put(token, verified)
        return verified

    def _issuer(self, claims: dict[str, Any]) -> TenantIssuer:
        issuer = self.issuers.get(str(claims.get("iss")))
        if issuer is None:
            raise unauthorized(f"token issuer {claims.get('iss')!r} is not trusted here", "C10")
        return issuer

    def _check_claims(
        self, token: str, claims: dict[str, Any], issuer: TenantIssuer, now: float
    ) -> VerifiedToken:
        verified = to_verified(token, claims, issuer)
        if verified.expires_at + self.leeway_s <= now:
            raise unauthorized("the token has expired")
        nbf = _as_int(claims["nbf"], "nbf") if "nbf" in claims else None
        if nbf is not None and nbf - self.leeway_s > now:
            raise unauthorized("the token is not valid yet")
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if self.audience not in audiences:
            raise unauthorized(f"the token is not meant for this server (aud {audience!r})")
        if claims.get("typ") not in (None, "Bearer"):
            raise unauthorized(f"a {claims.get('typ')} token is not an access token")
        return verified

    def active_until(self, token: str) -> float | None:
        """Until when the last introspection of `token` holds (None: not asked, or no longer
        held): past it, the gateway asks the issuer again."""
        cached = self._introspected.get(token)
        return cached[1] if cached is not None and cached[0] else None

    async def is_active(self, token: str, verified: VerifiedToken) -> bool:
        """RFC 7662: does the issuer still consider the token active (not revoked)?"""
        now = self.clock.time()
        cached = self._introspected.get(token)
        if cached is not None and cached[1] > now:
            return cached[0]
        issuer = self.issuers[verified.issuer]
        try:
            resp = await self.http.post(
                issuer.introspection_endpoint,
                data={"token": token},
                auth=(issuer.client_id, issuer.client_secret),
                timeout=5.0,
            )
        except httpx.HTTPError as exc:
            raise Denial(
                503, f"cannot reach {issuer.issuer} to introspect ({type(exc).__name__})"
            ) from exc
        if resp.status_code != 200:
            raise Denial(503, f"introspection at {issuer.issuer} answered {resp.status_code}")
        try:
            answer = resp.json()
        except ValueError:
            raise Denial(
                503, f"introspection at {issuer.issuer} answered something that is not JSON"
            ) from None
        # only the JSON value true means active (RFC 7662): not "false", 1 or a missing member
        active = isinstance(answer, dict) and answer.get("active") is True
        until = min(now + self.introspection_ttl_s, float(verified.expires_at))
        if len(self._introspected) > _CACHE_SIZE:
            self._introspected.clear()
        self._introspected[token] = (active, until)
        return active

"""Bearer token verification (`gateway/token_verifier.py`): local JWT checks against a cached
JWKS, and RFC 7662 introspection (C09).

The issuer is a fake served through `httpx.MockTransport` and time is a test clock: these are
unit tests of our own verifier (the integration tests use the real Keycloak). Every refusal must
be a `Denial`: 401 for a token that does not verify, 503 when the issuer cannot be asked (fail
closed: the token is never let through).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from joserfc import jwt
from joserfc.jwk import RSAKey

from gateway.denial import Denial
from gateway.settings import TenantIssuer
from gateway.token_verifier import TokenVerifier, VerifiedToken

pytestmark = pytest.mark.anyio

ISSUER = "https://auth.test/realms/tenant-a"
OTHER_ISSUER = "https://auth.test/realms/tenant-b"
AUDIENCE = "https://gateway.test/fhir"
TENANT = TenantIssuer("tenant-a", ISSUER, client_secret="s3cret")
NOW = 1_750_000_000.0
LEEWAY = 30

KEY = RSAKey.generate_key(2048, parameters={"kid": "k1"}, private=True)
ROTATED = RSAKey.generate_key(2048, parameters={"kid": "k2"}, private=True)
# another key under the published kid: what a forger without the issuer's key signs with
STRANGER = RSAKey.generate_key(2048, parameters={"kid": "k1"}, private=True)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(**changes: Any) -> dict[str, Any]:
    """A Keycloak-like access token's claims at `NOW`; a change of None drops the claim."""
    full: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": int(NOW),
        "exp": int(NOW) + 300,
        "jti": "jti-1",
        "sub": "user-1",
        "azp": "scheduler",
        "typ": "Bearer",
        "scope": "launch/patient patient/Appointment.rs",
        "patient": "pat-1",
    }
    full.update(changes)
    return {k: v for k, v in full.items() if v is not None}


def mint(key: RSAKey = KEY, alg: str = "RS256", kid: str | None = None, **changes: Any) -> str:
    header = {"alg": alg, "kid": kid or key.kid, "typ": "JWT"}
    return jwt.encode(header, claims(**changes), key, algorithms=[alg])


def unsigned(header: dict[str, Any], body: dict[str, Any], secret: bytes | None = None) -> str:
    """A compact JWT put together by hand: no signature, or an HMAC with `secret`."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(body).encode())}"
    if secret is None:
        return signing_input + "."
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


class Clock:
    """Wall and monotonic time that move only when told."""

    def __init__(self) -> None:
        self.now = NOW
        self.mono = 1_000.0

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.mono += seconds


class Realm:
    """The fake authorization server: its JWKS and introspection endpoints, and what was asked."""

    def __init__(self) -> None:
        self.keys = [KEY]
        self.jwks: Callable[[], httpx.Response] = self.serve_keys
        self.introspection: Callable[[], httpx.Response] = lambda: httpx.Response(
            200, json={"active": True}
        )
        self.requests: list[httpx.Request] = []

    def serve_keys(self) -> httpx.Response:
        return httpx.Response(200, json={"keys": [k.as_dict(private=False) for k in self.keys]})

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if str(request.url) == TENANT.jwks_uri and request.method == "GET":
            return self.jwks()
        if str(request.url) == TENANT.introspection_endpoint and request.method == "POST":
            return self.introspection()
        return httpx.Response(404)

    def asked(self, url: str) -> int:
        return sum(1 for r in self.requests if str(r.url) == url)

    @property
    def jwks_fetches(self) -> int:
        return self.asked(TENANT.jwks_uri)

    @property
    def introspections(self) -> int:
        return self.asked(TENANT.introspection_endpoint)


def unreachable() -> httpx.Response:
    raise httpx.ConnectError("connection refused")


@pytest.fixture
def realm() -> Realm:
    return Realm()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def verifier(realm: Realm, clock: Clock) -> TokenVerifier:
    return make_verifier(realm, clock)


def make_verifier(realm: Realm, clock: Clock, **options: Any) -> TokenVerifier:
    http = httpx.AsyncClient(transport=httpx.MockTransport(realm.handler))
    return TokenVerifier([TENANT], AUDIENCE, http, leeway_s=LEEWAY, clock=clock, **options)


async def refused(verifier: TokenVerifier, token: str, status: int = 401) -> Denial:
    with pytest.raises(Denial) as caught:
        await verifier.verify(token)
    assert caught.value.status == status, caught.value.reason
    if status == 401:
        assert caught.value.bearer_error == "invalid_token"
    return caught.value


# -- a good token -------------------------------------------------------------------------------


async def test_a_good_token_passes_with_its_claims(verifier: TokenVerifier) -> None:
    verified = await verifier.verify(mint())
    assert verified == VerifiedToken(
        token_id=verified.token_id,
        issuer=ISSUER,
        tenant="tenant-a",
        client_id="scheduler",
        subject="user-1",
        scopes=verified.scopes,
        patient="pat-1",
        encounter=None,
        issued_at=int(NOW),
        expires_at=int(NOW) + 300,
        jti="jti-1",
    )
    assert str(verified.scopes) == "launch/patient patient/Appointment.rs"
    assert verified.lifetime_s == 300


async def test_an_audience_list_naming_the_gateway_passes(verifier: TokenVerifier) -> None:
    verified = await verifier.verify(mint(aud=["account", AUDIENCE]))
    assert verified.client_id == "scheduler"


# -- algorithm and signature --------------------------------------------------------------------


async def test_alg_none_is_refused(verifier: TokenVerifier, realm: Realm) -> None:
    denial = await refused(verifier, unsigned({"alg": "none", "kid": "k1"}, claims()))
    assert "'none' is not accepted" in denial.reason
    assert realm.jwks_fetches == 0  # refused before any key is looked up


async def test_a_header_without_alg_is_refused(verifier: TokenVerifier) -> None:
    denial = await refused(verifier, unsigned({"kid": "k1"}, claims()))
    assert "None is not accepted" in denial.reason


@pytest.mark.parametrize(
    "secret",
    [KEY.as_pem(private=False), json.dumps(KEY.as_dict(private=False)).encode()],
    ids=["pem", "jwk"],
)
async def test_hs256_signed_with_the_public_key_is_refused(
    realm: Realm, clock: Clock, secret: bytes
) -> None:
    token = unsigned({"alg": "HS256", "kid": "k1"}, claims(), secret)
    denial = await refused(make_verifier(realm, clock), token)
    assert "'HS256' is not accepted" in denial.reason
    # even a policy that wrongly allowed HS256 must not take the RSA key as an HMAC secret
    lax = make_verifier(realm, clock, algorithms=("RS256", "HS256"))
    denial = await refused(lax, token)
    assert denial.reason == "the token's signature does not verify"


async def test_an_algorithm_the_policy_does_not_allow_is_refused(verifier: TokenVerifier) -> None:
    denial = await refused(verifier, mint(alg="RS512"))  # correctly signed, but not RS256
    assert "'RS512' is not accepted" in denial.reason


async def test_a_signature_by_another_key_is_refused(verifier: TokenVerifier) -> None:
    denial = await refused(verifier, mint(STRANGER))
    assert denial.reason == "the token's signature does not verify"


async def test_claims_changed_after_signing_are_refused(verifier: TokenVerifier) -> None:
    head, _, signature = mint().split(".")
    forged = f"{head}.{b64(json.dumps(claims(patient='pat-2')).encode())}.{signature}"
    denial = await refused(verifier, forged)
    assert denial.reason == "the token's signature does not verify"


# -- issuer, audience, time ---------------------------------------------------------------------


@pytest.mark.parametrize("iss", [OTHER_ISSUER, "http://evil.test/realms/tenant-a", ISSUER + "/"])
async def test_an_untrusted_issuer_is_refused_as_c10(
    verifier: TokenVerifier, realm: Realm, iss: str
) -> None:
    denial = await refused(verifier, mint(iss=iss))
    assert denial.control == "C10"
    assert realm.requests == []  # the keys of an issuer named by the token are never fetched


@pytest.mark.parametrize("aud", ["https://hapi.test/fhir", ["account"], AUDIENCE + "/", ""])
async def test_a_token_for_another_audience_is_refused(verifier: TokenVerifier, aud: Any) -> None:
    denial = await refused(verifier, mint(aud=aud))
    assert "not meant for this server" in denial.reason


async def test_an_expired_token_is_refused(verifier: TokenVerifier) -> None:
    denial = await refused(verifier, mint(exp=int(NOW) - LEEWAY))
    assert denial.reason == "the token has expired"


async def test_expiry_within_the_leeway_passes(verifier: TokenVerifier) -> None:
    verified = await verifier.verify(mint(exp=int(NOW) - LEEWAY + 1))
    assert verified.expires_at == int(NOW) - LEEWAY + 1


async def test_a_token_not_valid_yet_is_refused(verifier: TokenVerifier) -> None:
    denial = await refused(verifier, mint(nbf=int(NOW) + LEEWAY + 1))
    assert denial.reason == "the token is not valid yet"


async def test_nbf_within_the_leeway_passes(verifier: TokenVerifier) -> None:
    verified = await verifier.verify(mint(nbf=int(NOW) + LEEWAY))
    assert verified.subject == "user-1"


async def test_a_cached_token_is_refused_once_it_expires(
    verifier: TokenVerifier, clock: Clock
) -> None:
    token = mint(exp=int(NOW) + 60)
    await verifier.verify(token)
    clock.advance(60 + LEEWAY)
    denial = await refused(verifier, token)
    assert denial.reason == "the token has expired"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"exp": None}, "exp claim is missing"),
        ({"exp": "9999999999"}, "exp claim is missing or not a number"),
        ({"exp": True}, "exp claim is missing or not a number"),
        ({"iat": "0"}, "iat claim is missing or not a number"),
        ({"aud": None}, "not meant for this server"),
        ({"iss": None}, "issuer None is not trusted"),
    ],
)
async def test_missing_or_malformed_required_claims_are_refused(
    verifier: TokenVerifier, changes: dict[str, Any], reason: str
) -> None:
    denial = await refused(verifier, mint(**changes))
    assert reason in denial.reason


@pytest.mark.parametrize("typ", ["ID", "Refresh", "Logout"])
async def test_a_token_that_is_not_an_access_token_is_refused(
    verifier: TokenVerifier, typ: str
) -> None:
    denial = await refused(verifier, mint(typ=typ))
    assert denial.reason == f"a {typ} token is not an access token"


@pytest.mark.parametrize(
    "token", ["", "abc", "a.b", "a.b.c.d", ".e30.", "e30..", "!!.e30.x", "W10.e30.x", "e30.W10.x"]
)
async def test_what_is_not_a_jwt_is_refused(verifier: TokenVerifier, token: str) -> None:
    denial = await refused(verifier, token)
    assert denial.reason == "the bearer token is not a well-formed JWT"


_JWT_CHARS = st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/")


@settings(max_examples=300, deadline=None)
@given(
    token=st.one_of(
        st.text(max_size=200),
        st.text(_JWT_CHARS, max_size=200),
        st.builds(
            lambda h, c, s: f"{b64(json.dumps(h).encode())}.{b64(json.dumps(c).encode())}.{s}",
            st.dictionaries(st.sampled_from(["alg", "kid", "typ"]), st.text(max_size=8)),
            st.dictionaries(st.sampled_from(["iss", "aud", "exp", "typ"]), st.text(max_size=8)),
            st.text(_JWT_CHARS, max_size=40),
        ),
    )
)
def test_any_client_string_is_refused_with_401(token: str) -> None:
    realm, clock = Realm(), Clock()
    with pytest.raises(Denial) as caught:
        asyncio.run(make_verifier(realm, clock).verify(token))
    assert caught.value.status == 401
    assert realm.requests == []  # nothing a client makes up reaches the issuer


# -- the JWKS: cached, refetched on rotation, fail closed ---------------------------------------


async def test_the_jwks_is_fetched_once_for_many_tokens(
    verifier: TokenVerifier, realm: Realm, clock: Clock
) -> None:
    for n in range(5):
        await verifier.verify(mint(jti=f"jti-{n}"))
        clock.advance(1)
    assert realm.jwks_fetches == 1


async def test_the_jwks_is_fetched_again_after_its_ttl(realm: Realm, clock: Clock) -> None:
    verifier = make_verifier(realm, clock, jwks_ttl_s=60)
    await verifier.verify(mint(jti="a"))
    clock.advance(59)
    await verifier.verify(mint(jti="b"))
    assert realm.jwks_fetches == 1
    clock.advance(2)
    await verifier.verify(mint(jti="c"))
    assert realm.jwks_fetches == 2


async def test_a_rotated_key_is_fetched_and_accepted(
    verifier: TokenVerifier, realm: Realm, clock: Clock
) -> None:
    await verifier.verify(mint())
    realm.keys = [ROTATED, KEY]
    clock.advance(11)  # more than min_refetch_s after the last fetch
    verified = await verifier.verify(mint(ROTATED, jti="after-rotation"))
    assert verified.jti == "after-rotation"
    assert realm.jwks_fetches == 2


async def test_an_unknown_kid_the_issuer_does_not_serve_is_refused(
    verifier: TokenVerifier, realm: Realm, clock: Clock
) -> None:
    await verifier.verify(mint())
    clock.advance(11)
    denial = await refused(verifier, mint(ROTATED))  # refetched, still not there
    assert denial.reason == "the token's signature does not verify"
    assert realm.jwks_fetches == 2


async def test_unknown_kids_do_not_refetch_on_every_request(
    verifier: TokenVerifier, realm: Realm, clock: Clock
) -> None:
    await verifier.verify(mint())
    clock.advance(11)
    for n in range(20):  # a client inventing kids: at most one fetch per min_refetch_s
        await refused(verifier, mint(STRANGER, kid=f"made-up-{n}", jti=f"j{n}"))
        clock.advance(0.1)
    assert realm.jwks_fetches == 2


async def test_a_new_key_within_the_refetch_interval_waits_for_it(
    verifier: TokenVerifier, realm: Realm, clock: Clock
) -> None:
    await verifier.verify(mint())
    realm.keys = [ROTATED, KEY]
    clock.advance(5)  # less than min_refetch_s: the cached keys are used, the token fails
    await refused(verifier, mint(ROTATED))
    assert realm.jwks_fetches == 1
    clock.advance(6)
    assert (await verifier.verify(mint(ROTATED))).tenant == "tenant-a"
    assert realm.jwks_fetches == 2


@pytest.mark.parametrize(
    "answer",
    [
        unreachable,
        lambda: httpx.Response(500, text="oops"),
        lambda: httpx.Response(404, json={"error": "Realm not found."}),
        lambda: httpx.Response(200, text="<html>not json</html>"),
        lambda: httpx.Response(200, json={"keys": "none"}),
        lambda: httpx.Response(200, json=[]),
        lambda: httpx.Response(200, json={"keys": [1, "x"]}),
        lambda: httpx.Response(200, json={"keys": [{"kty": "RSA", "kid": "k1"}]}),
    ],
    ids=["unreachable", "500", "404", "not-json", "no-keys", "list", "not-keys", "no-modulus"],
)
async def test_a_jwks_that_cannot_be_had_refuses_with_503(
    verifier: TokenVerifier, realm: Realm, answer: Callable[[], httpx.Response]
) -> None:
    realm.jwks = answer
    denial = await refused(verifier, mint(), status=503)
    assert f"cannot fetch the signing keys of {ISSUER}" in denial.reason


async def test_stale_keys_are_not_used_when_the_jwks_is_down(realm: Realm, clock: Clock) -> None:
    verifier = make_verifier(realm, clock, jwks_ttl_s=60)
    await verifier.verify(mint(jti="a"))
    realm.jwks = unreachable
    clock.advance(61)
    await refused(verifier, mint(jti="b"), status=503)


async def test_a_jwks_that_is_down_is_not_asked_on_every_request(
    verifier: TokenVerifier, realm: Realm, clock: Clock
) -> None:
    realm.jwks = unreachable
    await refused(verifier, mint(jti="a"), status=503)
    for kid in ("x", "y", "z"):  # a client picks the kid: each one would mean a fetch
        await refused(verifier, mint(kid=kid, jti=kid), status=503)
    assert realm.jwks_fetches == 1
    realm.jwks = realm.serve_keys
    clock.advance(11)  # past min_refetch_s: asked again, and the keys are there
    assert (await verifier.verify(mint(jti="b"))).subject == "user-1"
    assert realm.jwks_fetches == 2


@pytest.mark.parametrize("nbf", ["0", "soon", [1], True])
async def test_an_nbf_that_is_not_a_number_is_refused(verifier: TokenVerifier, nbf: Any) -> None:
    denial = await refused(verifier, mint(nbf=nbf))
    assert "nbf" in denial.reason


# -- introspection (C09) ------------------------------------------------------------------------


async def verified_and_token(verifier: TokenVerifier, **changes: Any) -> tuple[str, VerifiedToken]:
    token = mint(**changes)
    return token, await verifier.verify(token)


async def test_introspection_active_and_inactive(verifier: TokenVerifier, realm: Realm) -> None:
    token, verified = await verified_and_token(verifier)
    assert await verifier.is_active(token, verified) is True
    (asked,) = [r for r in realm.requests if r.method == "POST"]
    assert asked.content == f"token={token}".encode()
    credentials = base64.b64encode(b"fhirlab-gateway:s3cret").decode()
    assert asked.headers["Authorization"] == f"Basic {credentials}"
    other, verified_other = await verified_and_token(verifier, jti="jti-2")
    realm.introspection = lambda: httpx.Response(200, json={"active": False})
    assert await verifier.is_active(other, verified_other) is False


@pytest.mark.parametrize(
    "answer",
    [
        unreachable,
        lambda: httpx.Response(401, json={"error": "unauthorized_client"}),
        lambda: httpx.Response(500, text="oops"),
    ],
    ids=["unreachable", "401", "500"],
)
async def test_introspection_that_cannot_be_had_refuses_with_503(
    verifier: TokenVerifier, realm: Realm, answer: Callable[[], httpx.Response]
) -> None:
    token, verified = await verified_and_token(verifier)
    realm.introspection = answer
    with pytest.raises(Denial) as caught:
        await verifier.is_active(token, verified)
    assert caught.value.status == 503
    assert f"{ISSUER}" in caught.value.reason


async def test_a_non_json_introspection_answer_refuses_with_503(
    verifier: TokenVerifier, realm: Realm
) -> None:
    token, verified = await verified_and_token(verifier)
    realm.introspection = lambda: httpx.Response(200, text="<html>login</html>")
    with pytest.raises(Denial) as caught:
        await verifier.is_active(token, verified)
    assert caught.value.status == 503
    assert "not JSON" in caught.value.reason


@pytest.mark.parametrize(
    "answer",
    [
        {"active": "true"},
        {"active": "false"},
        {"active": 1},
        {"active": [True]},
        {"active": None},
        {},
        [{"active": True}],
        "active",
    ],
)
async def test_only_the_json_value_true_is_active(
    verifier: TokenVerifier, realm: Realm, answer: Any
) -> None:
    token, verified = await verified_and_token(verifier)
    realm.introspection = lambda: httpx.Response(200, json=answer)
    assert await verifier.is_active(token, verified) is False


async def test_introspection_is_cached_for_its_ttl(
    verifier: TokenVerifier, realm: Realm, clock: Clock
) -> None:
    token, verified = await verified_and_token(verifier)  # introspection_ttl_s is 10
    assert await verifier.is_active(token, verified) is True
    realm.introspection = lambda: httpx.Response(200, json={"active": False})  # revoked now
    clock.advance(9)
    assert await verifier.is_active(token, verified) is True  # the price of the cache
    assert realm.introspections == 1
    clock.advance(2)
    assert await verifier.is_active(token, verified) is False
    assert realm.introspections == 2
    clock.advance(5)
    assert await verifier.is_active(token, verified) is False  # a revocation is cached too
    assert realm.introspections == 2


async def test_introspection_is_not_cached_past_the_tokens_expiry(
    realm: Realm, clock: Clock
) -> None:
    verifier = make_verifier(realm, clock, introspection_ttl_s=600)
    token, verified = await verified_and_token(verifier, exp=int(NOW) + 20)
    await verifier.is_active(token, verified)
    clock.advance(21)
    await verifier.is_active(token, verified)
    assert realm.introspections == 2


async def test_a_zero_ttl_asks_every_time(realm: Realm, clock: Clock) -> None:
    verifier = make_verifier(realm, clock, introspection_ttl_s=0)
    token, verified = await verified_and_token(verifier)
    for _ in range(3):
        await verifier.is_active(token, verified)
    assert realm.introspections == 3

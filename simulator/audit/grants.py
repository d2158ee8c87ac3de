"""What the authorization server issues when the audit asks for tokens as the app would.

These probes need a client registration (`ClientAccess`). Each asks the token endpoint once or
logs the test user in once; nothing here changes the target, and the tokens obtained are the
audit's own (the last step revokes the one it used, `revocation.py`).
"""

from __future__ import annotations

from typing import Final

import httpx

from labcore.scopes import ScopeSet, parse_scopes
from simulator.audit.access import ClientAccess
from simulator.audit.probes import MAX_LIFETIME_S, Answers, note, put, token_claims
from simulator.smart.client import SmartClient
from simulator.smart.discovery import AuthServer
from simulator.smart.errors import SmartError
from simulator.smart.tokens import Token

# asked for one at a time beside the app's own request: what should never be granted as asked
OVER_BROAD: Final = (
    "patient/*.read",
    "patient/*.rs",
    "user/*.read",
    "user/*.rs",
    "system/*.read",
    "system/*.rs",
    "offline_access",
)
NOT_A_CODE: Final = "fhirlab-audit-not-a-code"


def ask(client: SmartClient, access: ClientAccess, scope: str) -> Token:
    """A token the way the app gets one: the test user's login, else client credentials."""
    if access.user:
        return client.authorization_code(access.user, access.password or "", scope)
    return client.client_credentials(scope)


def unauthenticated(
    answers: Answers, http: httpx.Client, server: AuthServer, access: ClientAccess
) -> None:
    """C07: a token request that names the client and proves nothing. A confidential client's
    server refuses it (401, `invalid_client`) before it looks at the code."""
    probe = "POST token endpoint naming the client, with no credentials"
    form = {
        "grant_type": "authorization_code",
        "code": NOT_A_CODE,
        "redirect_uri": access.redirect_uri,
        "client_id": access.client_id,
    }
    try:
        resp = http.post(server.token_endpoint, data=form)
        error = str(resp.json().get("error", "")) if resp.status_code != 200 else "a token"
        status = resp.status_code
    except (httpx.HTTPError, ValueError, AttributeError):
        error, status = "no OAuth answer", None
    if status == 401 or error == "invalid_client":  # Keycloak: 401 unauthorized_client
        put(answers, "C07", probe, f"HTTP {status} {error}: the client must authenticate", True)
    else:
        observed = f"HTTP {status} {error}: the server took the client at its word (public)"
        put(answers, "C07", probe, observed, False)
    if not access.confidential:
        observed = "no secret or key was given: the app holds nothing to authenticate with"
        put(answers, "C07", "the client registration given to the audit", observed, False)


def app_token(answers: Answers, client: SmartClient, access: ClientAccess) -> Token | None:
    """The token for the app's own request: its claims (C01-C03, C05), `expires_in` (C02), a
    refresh token that outlives the session (C03), and nothing granted beyond the request (C11)."""
    probe = f"token for the app's request {access.scope!r}"
    try:
        token = ask(client, access, access.scope)
    except SmartError as exc:
        for control in ("C01", "C02", "C03", "C05", "C11"):
            note(answers, control, probe, f"refused: {exc}")
        return None
    _issued(answers, probe, token)
    beyond = _beyond(parse_scopes(access.scope), _granted(token))
    observed = f"granted beyond the request: {' '.join(beyond)}" if beyond else "nothing unasked"
    put(answers, "C11", probe, observed, not beyond)
    return token


def over_broad(answers: Answers, client: SmartClient, access: ClientAccess) -> None:
    """C11 (and C01, C03, C05): each over-broad scope asked beside the app's own request. A refusal
    or a narrower grant passes; the scope granted as asked fails."""
    asked = set(access.scope.split())
    for extra in (s for s in OVER_BROAD if s not in asked):
        probe = f"token for the app's request + {extra!r}"
        try:
            token = ask(client, access, f"{access.scope} {extra}")
        except SmartError as exc:
            put(answers, "C11", probe, f"refused: {exc.error}", True)
            continue
        granted = _granted(token)
        as_asked = extra in {s.raw for s in granted.resource_scopes} or (
            extra == "offline_access" and (granted.has_offline_access or token.is_offline)
        )
        observed = f"granted {extra} as asked" if as_asked else f"narrowed: {granted}"
        put(answers, "C11", probe, observed, not as_asked)
        if as_asked:
            _issued(answers, probe, token)


def _issued(answers: Answers, probe: str, token: Token) -> None:
    token_claims(answers, token.access_token, probe)
    if token.expires_in is not None:
        observed = f"expires_in {token.expires_in} s (limit {MAX_LIFETIME_S} s)"
        put(answers, "C02", probe, observed, token.expires_in <= MAX_LIFETIME_S)
    if token.is_offline:
        put(answers, "C03", probe, "an offline refresh token (outlives the session)", False)


def _granted(token: Token) -> ScopeSet:
    """The token response's `scope`, else the access token's claim."""
    return parse_scopes(token.scope or str(token.claims.get("scope", "")))


def _beyond(asked: ScopeSet, granted: ScopeSet) -> list[str]:
    """Granted data scopes that no asked scope covers (a narrowing is within the request)."""
    beyond = [
        g.raw
        for g in granted.resource_scopes
        if not any(
            a.context == g.context and all(a.covers(g.resource_type, p) for p in g.permissions)
            for a in asked.resource_scopes
        )
    ]
    if granted.has_offline_access and not asked.has_offline_access:
        beyond.append("offline_access")
    return beyond

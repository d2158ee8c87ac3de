"""SMART on FHIR flows against a real authorization server, scripted (no browser).

Authorization code + PKCE for a scripted user (the login form is driven over HTTP), EHR launch
(a `launch` handle from the lab's EHR), standalone launch, backend services (`client_credentials`
with a signed assertion), refresh, revocation (RFC 7009) and introspection (RFC 7662). Refusals
come back as `SmartError` with the server's OAuth error code, so tests and scenarios can assert on
exactly what the server did.
"""

from __future__ import annotations

import html
import re
import secrets
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qs, urlencode, urlparse

import httpx

from simulator.smart.auth import ClientAuth
from simulator.smart.discovery import AuthServer
from simulator.smart.errors import SmartError
from simulator.smart.pkce import new_verifier, s256
from simulator.smart.tokens import Token

PkceMode = Literal["S256", "plain", "none"]
_FORM_ACTION = re.compile(r'<form[^>]*id="kc-form-login"[^>]*action="([^"]+)"', re.S)
_PAGE_ERROR = re.compile(r'<span[^>]*id="input-error"[^>]*>\s*(.*?)\s*</span>', re.S)


@dataclass(frozen=True)
class Authorization:
    """Where the authorization endpoint sent the browser: a code, or an OAuth error."""

    code: str | None
    error: str | None
    error_description: str | None
    verifier: str | None


def _browser() -> httpx.Client:
    """A fresh cookie jar per login, so one scripted user's session never leaks into another's.

    Keycloak marks its login cookies Secure; a browser still sends them to http://localhost (a
    secure context), httpx does not. The lab runs on plain-HTTP loopback, so clear the flag."""
    browser = httpx.Client(timeout=30, follow_redirects=False)

    def insecure_cookies(_: httpx.Response) -> None:
        for cookie in browser.cookies.jar:
            cookie.secure = False

    browser.event_hooks["response"] = [insecure_cookies]
    return browser


class SmartClient:
    def __init__(
        self,
        server: AuthServer,
        auth: ClientAuth,
        redirect_uri: str | None = None,
        http: httpx.Client | None = None,
    ) -> None:
        self.server = server
        self.auth = auth
        self.redirect_uri = redirect_uri
        self._http = http or httpx.Client(timeout=30)

    @property
    def client_id(self) -> str:
        return self.auth.client_id

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SmartClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # ---- authorization code ---------------------------------------------------------------
    def authorize(
        self,
        username: str,
        password: str,
        scope: str,
        *,
        launch: str | None = None,
        aud: str | None = None,
        pkce: PkceMode = "S256",
        extra: dict[str, str] | None = None,
    ) -> Authorization:
        """Log `username` in through the server's login form; stop at the redirect back."""
        if not self.redirect_uri:
            raise ValueError("authorization code flow needs a redirect_uri")
        verifier = new_verifier() if pkce != "none" else None
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": scope,
            "state": secrets.token_urlsafe(16),
        }
        if verifier:
            params["code_challenge"] = s256(verifier) if pkce == "S256" else verifier
            params["code_challenge_method"] = pkce
        if launch:
            params["launch"] = launch
        if aud:
            params["aud"] = aud
        params.update(extra or {})
        with _browser() as browser:
            page = browser.get(self.server.authorization_endpoint, params=params)
            if page.status_code in (302, 303):
                return self._landing(page, verifier)
            action = _FORM_ACTION.search(page.text)
            if page.status_code != 200 or not action:
                raise SmartError("authorize", "no_login_form", _page_error(page), page.status_code)
            done = browser.post(
                html.unescape(action.group(1)),
                data={"username": username, "password": password, "credentialId": ""},
            )
            if done.status_code not in (302, 303):
                raise SmartError("login", "login_failed", _page_error(done), done.status_code)
            return self._landing(done, verifier)

    def _landing(self, response: httpx.Response, verifier: str | None) -> Authorization:
        location = response.headers.get("location", "")
        assert self.redirect_uri is not None
        if not location.startswith(self.redirect_uri):
            raise SmartError(
                "authorize", "unexpected_redirect", location[:200], response.status_code
            )
        query = parse_qs(urlparse(location).query)
        first = {k: v[0] for k, v in query.items()}
        return Authorization(
            first.get("code"), first.get("error"), first.get("error_description"), verifier
        )

    def exchange(self, code: str, verifier: str | None, **extra: str) -> Token:
        form = {"grant_type": "authorization_code", "code": code}
        if self.redirect_uri:
            form["redirect_uri"] = self.redirect_uri
        if verifier is not None:
            form["code_verifier"] = verifier
        form.update(extra)
        return self._token("code exchange", form)

    def authorization_code(self, username: str, password: str, scope: str, **options: Any) -> Token:
        """The whole flow: login, code, token. Raises SmartError with the server's refusal."""
        result = self.authorize(username, password, scope, **options)
        if result.error or not result.code:
            raise SmartError("authorize", result.error or "no_code", result.error_description or "")
        return self.exchange(result.code, result.verifier)

    # ---- other grants ---------------------------------------------------------------------
    def client_credentials(self, scope: str) -> Token:
        return self._token(
            "client_credentials", {"grant_type": "client_credentials", "scope": scope}
        )

    def refresh(self, refresh_token: str, scope: str | None = None) -> Token:
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        if scope is not None:
            form["scope"] = scope
        return self._token("refresh", form)

    def revoke(self, token: str, hint: str = "access_token") -> None:
        """RFC 7009: the server answers 200 whether or not the token was valid."""
        endpoint = self._endpoint(self.server.revocation_endpoint, "revocation")
        form = {"token": token, "token_type_hint": hint}
        resp = self._post(endpoint, form)
        if resp.status_code != 200:
            raise _refusal("revoke", resp)

    def introspect(self, token: str) -> dict[str, Any]:
        """RFC 7662 (the client must be confidential)."""
        endpoint = self._endpoint(self.server.introspection_endpoint, "introspection")
        resp = self._post(endpoint, {"token": token})
        if resp.status_code != 200:
            raise _refusal("introspect", resp)
        body = resp.json()
        return body if isinstance(body, dict) else {}

    # ---- plumbing -------------------------------------------------------------------------
    def _endpoint(self, url: str | None, what: str) -> str:
        if not url:
            raise SmartError(what, "unsupported", f"the server advertises no {what} endpoint")
        return url

    def _post(self, endpoint: str, form: dict[str, str]) -> httpx.Response:
        basic = self.auth.apply(form, self.server.token_endpoint)
        return self._http.post(
            endpoint, content=urlencode(form), auth=basic or httpx.USE_CLIENT_DEFAULT,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )  # fmt: skip

    def _token(self, step: str, form: dict[str, str]) -> Token:
        resp = self._post(self.server.token_endpoint, form)
        if resp.status_code != 200:
            raise _refusal(step, resp)
        return Token.from_response(resp.json())


def _refusal(step: str, resp: httpx.Response) -> SmartError:
    try:
        body = resp.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    return SmartError(
        step,
        str(body.get("error", "http_error")),
        str(body.get("error_description", resp.text[:200] if not body else "")),
        resp.status_code,
    )


def _page_error(page: httpx.Response) -> str:
    match = _PAGE_ERROR.search(page.text)
    if match:
        return html.unescape(re.sub(r"<[^>]+>", "", match.group(1))).strip()
    return f"HTTP {page.status_code}"

"""A small client for Keycloak's admin REST API (the parts the lab provisions with).

Token from the master realm's `admin-cli` (password grant, demo-only bootstrap admin), then plain
JSON calls. Connection problems and refused logins become one-line `LabError`s.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from labcore.errors import LabError


class KeycloakAdmin:
    def __init__(self, base_url: str, user: str, password: str, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._user = user
        self._password = password
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout)
        self._token: str | None = None
        self._token_expiry = 0.0

    def __enter__(self) -> KeycloakAdmin:
        return self

    def __exit__(self, *_: object) -> None:
        self._http.close()

    # ---- auth -------------------------------------------------------------------------
    def token(self) -> str:
        if self._token and time.monotonic() < self._token_expiry - 10:
            return self._token
        try:
            resp = self._http.post(
                "/realms/master/protocol/openid-connect/token",
                data={
                    "grant_type": "password",
                    "client_id": "admin-cli",
                    "username": self._user,
                    "password": self._password,
                },
            )
        except httpx.HTTPError as exc:
            raise LabError(
                f"Keycloak at {self.base_url} is unreachable ({exc.__class__.__name__})",
                "start the lab with `fhirlab up` and check `fhirlab status`",
            ) from exc
        if resp.status_code != 200:
            raise LabError(
                f"Keycloak admin login as {self._user!r} failed ({resp.status_code}: "
                f"{resp.text[:200]})",
                "the bootstrap admin exists only on a fresh Keycloak database; "
                "`fhirlab up --fresh` recreates it",
            )
        body = resp.json()
        self._token = str(body["access_token"])
        self._token_expiry = time.monotonic() + float(body.get("expires_in", 60))
        return self._token

    # ---- calls ------------------------------------------------------------------------
    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token()}", **kwargs.pop("headers", {})}
        try:
            return self._http.request(method, f"/admin{path}", headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            raise LabError(
                f"Keycloak admin call {method} {path} failed ({exc.__class__.__name__})",
                "check `fhirlab status` and `fhirlab logs keycloak`",
            ) from exc

    def expect(self, resp: httpx.Response, *ok: int) -> httpx.Response:
        if resp.status_code not in ok:
            raise LabError(
                f"Keycloak refused {resp.request.method} {resp.request.url.path}: "
                f"{resp.status_code} {resp.text[:300]}"
            )
        return resp

    def realm_exists(self, realm: str) -> bool:
        resp = self.request("GET", f"/realms/{realm}")
        return self.expect(resp, 200, 404).status_code == 200

    def client_scopes(self, realm: str) -> dict[str, str]:
        """Client scope ids by name."""
        resp = self.expect(self.request("GET", f"/realms/{realm}/client-scopes"), 200)
        return {s["name"]: s["id"] for s in resp.json()}

    def client_uuid(self, realm: str, client_id: str) -> str | None:
        """Keycloak's internal id of the client `client_id` in `realm` (None if absent)."""
        resp = self.request("GET", f"/realms/{realm}/clients", params={"clientId": client_id})
        found = self.expect(resp, 200).json()
        return str(found[0]["id"]) if found else None

    def create_realm(self, representation: dict[str, Any]) -> None:
        self.expect(self.request("POST", "/realms", json=representation, timeout=300), 201)

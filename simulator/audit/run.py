"""One audit: the probes the given access allows, in order, into an `AuditReport`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from labcore.errors import LabError
from simulator.audit import grants, operations, probes, registration, revocation
from simulator.audit.access import AdminAccess, ClientAccess
from simulator.audit.checklist import ITEMS, Answer
from simulator.audit.report import AuditReport
from simulator.smart.client import SmartClient
from simulator.smart.discovery import AuthServer
from simulator.smart.tokens import Token, jwt_claims

TOKEN = "a token (--token, or --client-id to obtain one)"
# what an item needs that this audit was not given
NEEDS = {
    "C04": f"{TOKEN} and --try-export (starts a bulk export, then cancels it)",
    "C06": "Keycloak admin access (--keycloak-admin), for the authorization server's events",
    "C09": "a client registration (--client-id), to revoke a token the audit obtains",
    "C10": "a second tenant's token (--second-token) or Keycloak admin access",
    "C11": "a client registration (--client-id), to ask for over-broad scopes",
}


@dataclass(frozen=True, slots=True)
class AuditOptions:
    base: str  # the FHIR base URL
    controls: tuple[str, ...]  # the items to answer
    token: str | None = None  # a token the user supplies (patient context for C08)
    client: ClientAccess | None = None  # a registration to obtain tokens with
    admin: AdminAccess | None = None  # Keycloak admin access
    second_token: str | None = None  # a token of another tenant (C10)
    try_export: bool = False  # opt-in: a bulk kick-off with the app's token (C04)
    revocation_wait_s: float = 60.0
    timeout_s: float = 15.0

    def described(self) -> dict[str, Any]:
        """What the audit was given, without secrets."""
        client = self.client
        return {
            "only": list(self.controls),
            "token": self.token is not None,
            "client_id": client.client_id if client else None,
            "user": client.user if client else None,
            "scope": client.scope if client else None,
            "keycloak_admin": self.admin.url if self.admin else None,
            "second_token": self.second_token is not None,
            "try_export": self.try_export,
        }


def audit(options: AuditOptions) -> AuditReport:
    base = options.base.rstrip("/")
    answers = {c: Answer(ITEMS[c], needs=NEEDS.get(c, TOKEN)) for c in options.controls}
    report = AuditReport(
        base,
        datetime.now(UTC).isoformat(timespec="seconds"),
        options.described(),
        list(answers.values()),
    )
    with httpx.Client(timeout=options.timeout_s) as http:
        _reachable(http, base)
        doc = probes.discovery(answers, http, base)
        probes.without_token(answers, http, base)
        probes.capabilities(answers, http, base)
        if options.token is not None:
            probes.token_claims(answers, options.token)
        smart, obtained = _obtain(answers, http, options, doc)
        try:
            token = obtained.access_token if obtained else options.token
            if token is not None:
                patient = (obtained.patient if obtained else None) or _patient_claim(token)
                _with_token(answers, http, base, options, token, patient)
            if options.admin is not None and doc is not None:
                client_id = options.client.client_id if options.client else None
                registration.registration(answers, options.admin, str(doc["issuer"]), client_id)
            if smart is not None and obtained is not None:  # last: the token is dead after it
                wait = options.revocation_wait_s
                revocation.revoke_and_time(answers, http, base, smart, obtained.access_token, wait)
        finally:
            if smart is not None:
                smart.close()
    return report


def _obtain(
    answers: probes.Answers, http: httpx.Client, options: AuditOptions, doc: dict[str, Any] | None
) -> tuple[SmartClient | None, Token | None]:
    """With a client registration: the tokens the authorization server issues it."""
    if options.client is None or doc is None:
        return None, None
    server = AuthServer.from_document(doc)
    grants.unauthenticated(answers, http, server, options.client)
    smart = SmartClient(server, options.client.auth(), options.client.redirect_uri)
    token = grants.app_token(answers, smart, options.client)
    if token is not None:  # beside a request that is itself refused, a refusal says nothing
        grants.over_broad(answers, smart, options.client)
    return smart, token


def _with_token(
    answers: probes.Answers,
    http: httpx.Client,
    base: str,
    options: AuditOptions,
    token: str,
    patient: str | None,
) -> None:
    """The probes a token opens: compartment (C08), other tenant (C10), operations (C12, C04)."""
    if patient:
        probes.compartment(answers, http, base, token, patient)
        if options.second_token is not None:
            probes.tenancy(answers, http, base, options.second_token, patient)
    operations.everything(answers, http, base, token, patient)
    if options.try_export:
        operations.export_kick_off(answers, http, base, token)


def _patient_claim(token: str) -> str | None:
    patient = jwt_claims(token).get("patient")
    return patient if isinstance(patient, str) and patient else None


def _reachable(http: httpx.Client, base: str) -> None:
    """A target that does not answer at all is a usage error, not twelve failed items."""
    try:
        http.get(f"{base}/metadata", headers=probes.FHIR_JSON)
    except httpx.HTTPError as exc:
        raise LabError(
            f"cannot reach {base} ({type(exc).__name__})",
            "check the URL (the FHIR base, e.g. http://localhost:8080/fhir) and that it is up",
        ) from None

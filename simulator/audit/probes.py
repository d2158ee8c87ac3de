"""What `fhirlab audit` asks of a target, each probe adding evidence to the items it informs.

Every probe here only reads: the SMART configuration, the CapabilityStatement, searches with a
small `_count`, and the claims of a token the user supplies (decoded, not verified: the target's
own server verifies it on every probe).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import httpx

from labcore.scopes import parse_scopes
from simulator.audit.checklist import Answer
from simulator.smart.tokens import jwt_claims

MAX_LIFETIME_S: Final = 900  # the checklist's 15 minutes
RESTRICTED_OPERATIONS: Final = frozenset({"export", "everything", "expunge", "reindex"})
PROBE_COUNT: Final = 5  # results asked of each compartment probe
FHIR_JSON: Final = {"Accept": "application/fhir+json"}

Answers = Mapping[str, Answer]


def put(answers: Answers, control: str, probe: str, observed: str, ok: bool) -> None:
    if control in answers:
        answers[control].add(probe, observed, ok)


def note(answers: Answers, control: str, probe: str, observed: str) -> None:
    if control in answers:
        answers[control].note(probe, observed)


def discovery(answers: Answers, http: httpx.Client, base: str) -> dict[str, Any] | None:
    """`.well-known/smart-configuration`: PKCE methods (C07), revocation and introspection
    endpoints (C09), the grant types and scopes offered (noted)."""
    probe = "GET .well-known/smart-configuration"
    try:
        resp = http.get(f"{base}/.well-known/smart-configuration")
        doc = resp.json() if resp.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        doc = None
    if not isinstance(doc, dict):
        for control in ("C07", "C09"):
            put(answers, control, probe, "no SMART configuration published", False)
        return None
    methods = doc.get("code_challenge_methods_supported") or []
    put(
        answers,
        "C07",
        probe,
        f"code_challenge_methods_supported: {methods or 'absent'}",
        methods == ["S256"],
    )
    grants = doc.get("grant_types_supported") or []
    legacy = [g for g in grants if g in ("implicit", "password")]
    if legacy:
        observed = f"offers {', '.join(legacy)}: tokens outside a confidential flow"
        put(answers, "C07", probe, observed, False)
    for field in ("revocation_endpoint", "introspection_endpoint"):
        value = doc.get(field)
        if value:  # offered is not yet effective: a revoked token's refusal decides
            note(answers, "C09", probe, f"{field}: {value}")
        else:
            put(answers, "C09", probe, f"{field}: absent", False)
    scopes = doc.get("scopes_supported") or []
    offered = parse_scopes(" ".join(str(s) for s in scopes))
    if offered.wildcard_scopes:
        wild = " ".join(s.raw for s in offered.wildcard_scopes)
        note(answers, "C05", probe, f"offers wildcards: {wild}")
    if offered.has_offline_access:
        note(answers, "C03", probe, "offers offline_access (to whom is the client registration's)")
    return doc


def without_token(answers: Answers, http: httpx.Client, base: str) -> None:
    """A search with no token at all: served data fails every access item it touches."""
    probe = f"GET Patient?_count={PROBE_COUNT} with no token"
    try:
        resp = http.get(f"{base}/Patient", params={"_count": PROBE_COUNT}, headers=FHIR_JSON)
    except httpx.HTTPError as exc:
        for control in ("C01", "C05", "C08", "C10"):
            note(answers, control, probe, f"no answer ({type(exc).__name__})")
        return
    served = resp.status_code == 200 and bool(_entries(resp))
    observed = (
        f"HTTP 200 with {len(_entries(resp))} patient(s): no token needed"
        if served
        else f"HTTP {resp.status_code}"
    )
    for control in ("C01", "C05", "C08", "C10"):
        if served:
            put(answers, control, probe, observed, False)
        else:  # refusing the anonymous is the least of it: the token's probes decide
            note(answers, control, probe, observed)


def capabilities(answers: Answers, http: httpx.Client, base: str) -> None:
    """The CapabilityStatement's operations (noted for C04 and C12: offered is not yet open)."""
    probe = "GET metadata"
    try:
        doc = http.get(f"{base}/metadata", headers=FHIR_JSON).json()
    except (httpx.HTTPError, ValueError):
        note(answers, "C12", probe, "no CapabilityStatement")
        return
    names = set()
    for rest in doc.get("rest", []) if isinstance(doc, dict) else []:
        for op in rest.get("operation", []):
            names.add(str(op.get("name", "")).lstrip("$"))
        for resource in rest.get("resource", []):
            for op in resource.get("operation", []):
                names.add(str(op.get("name", "")).lstrip("$"))
    offered = sorted(names & RESTRICTED_OPERATIONS)
    note(answers, "C12", probe, f"restricted operations offered: {', '.join(offered) or 'none'}")
    if "export" in names:
        observed = "bulk $export offered (a kick-off with the client's token decides)"
        note(answers, "C04", probe, observed)


def token_claims(
    answers: Answers, token: str, probe: str = "claims of the supplied token"
) -> dict[str, Any] | None:
    """A token's own claims: its scopes (C01, C03, C05) and lifetime (C02)."""
    claims = jwt_claims(token)
    if not claims:
        for control in ("C01", "C02", "C03", "C05"):
            note(answers, control, probe, "not a JWT: its claims cannot be read here")
        return None
    scope = str(claims.get("scope", ""))
    granted = parse_scopes(scope)
    wide = [s.raw for s in granted.resource_scopes if s.context != "patient"]
    beyond = f": {' '.join(wide)} beyond the patient" if wide else ""
    put(answers, "C01", probe, f"scope {scope!r}{beyond}", not wide)
    if isinstance(claims.get("exp"), int) and isinstance(claims.get("iat"), int):
        lifetime = claims["exp"] - claims["iat"]
        observed = f"lifetime {lifetime} s (limit {MAX_LIFETIME_S} s)"
        put(answers, "C02", probe, observed, lifetime <= MAX_LIFETIME_S)
    offline = granted.has_offline_access
    held = "granted" if offline else "not granted"
    put(answers, "C03", probe, f"offline_access {held}", not offline)
    wild = [s.raw for s in granted.wildcard_scopes]
    put(answers, "C05", probe, f"wildcards: {' '.join(wild) or 'none'}", not wild)
    return claims


def compartment(answers: Answers, http: httpx.Client, base: str, token: str, patient: str) -> None:
    """C08: searches that name no patient, with a patient-context token: nothing of another
    patient may come back."""
    headers = {**FHIR_JSON, "Authorization": f"Bearer {token}"}
    for resource in ("Patient", "Observation"):
        probe = f"GET {resource}?_count={PROBE_COUNT} with the token of Patient/{patient}"
        try:
            resp = http.get(f"{base}/{resource}", params={"_count": PROBE_COUNT}, headers=headers)
        except httpx.HTTPError as exc:
            note(answers, "C08", probe, f"no answer ({type(exc).__name__})")
            continue
        if resp.status_code != 200:
            put(answers, "C08", probe, f"HTTP {resp.status_code}", resp.status_code in (401, 403))
            continue
        others = sorted(patients_in(resp) - {patient})
        observed = f"other patients: {', '.join(others)}" if others else "only its own patient"
        put(answers, "C08", probe, observed, not others)


def tenancy(answers: Answers, http: httpx.Client, base: str, other: str, patient: str) -> None:
    """C10: the token of a second tenant asks for the first token's patient by id and by search;
    neither may serve it."""
    headers = {**FHIR_JSON, "Authorization": f"Bearer {other}"}
    asks = (
        (f"GET Patient/{patient} with the second tenant's token", f"{base}/Patient/{patient}", {}),
        (
            f"GET Patient?_id={patient} with the second tenant's token",
            f"{base}/Patient",
            {"_id": patient},
        ),
    )
    for probe, url, params in asks:
        try:
            resp = http.get(url, params=params, headers=headers)
        except httpx.HTTPError as exc:
            note(answers, "C10", probe, f"no answer ({type(exc).__name__})")
            continue
        served = resp.status_code == 200 and patient in patients_in(resp)
        observed = f"HTTP {resp.status_code}" + (", the other tenant's patient served" * served)
        put(answers, "C10", probe, observed, not served)


def patients_in(resp: httpx.Response) -> set[str]:
    """The patients whose records an answer holds."""
    return {p for p in (_patient_of(r) for r in _resources(resp)) if p}


def _resources(resp: httpx.Response) -> list[dict[str, Any]]:
    """A Bundle's resources, or the one resource a read answered."""
    try:
        body = resp.json()
    except ValueError:
        return []
    if isinstance(body, dict) and body.get("resourceType") not in (None, "Bundle"):
        return [body]
    return _entries(resp)


def _entries(resp: httpx.Response) -> list[dict[str, Any]]:
    try:
        body = resp.json()
    except ValueError:
        return []
    entries = body.get("entry", []) if isinstance(body, dict) else []
    return [e.get("resource", {}) for e in entries if isinstance(e, dict)]


def _patient_of(resource: dict[str, Any]) -> str | None:
    if resource.get("resourceType") == "Patient":
        return str(resource.get("id"))
    for field in ("subject", "patient"):
        ref = resource.get(field)
        if isinstance(ref, dict) and str(ref.get("reference", "")).startswith("Patient/"):
            return str(ref["reference"]).split("/", 1)[1]
    return None

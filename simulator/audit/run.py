"""One audit: the probes the given access allows, in order, into an `AuditReport`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import httpx

from labcore.errors import LabError
from simulator.audit import probes
from simulator.audit.checklist import ITEMS, Answer
from simulator.audit.report import AuditReport

# what an item needs that this audit could not be given yet
NEEDS = {
    "C04": "a bulk kick-off with the client's token (not run by this version)",
    "C06": "access to the target's audit trail",
    "C09": "a token the audit may revoke, to time its refusal",
    "C10": "a token of a second tenant",
    "C11": "client credentials, to ask for over-broad scopes",
    "C12": "a call of a restricted operation with the client's token",
}


@dataclass(frozen=True, slots=True)
class AuditOptions:
    base: str  # the FHIR base URL
    controls: tuple[str, ...]  # the items to answer
    token: str | None = None  # a token the user supplies (patient context for C08)
    timeout_s: float = 15.0


def audit(options: AuditOptions) -> AuditReport:
    base = options.base.rstrip("/")
    answers = {
        c: Answer(ITEMS[c], needs=NEEDS.get(c, "a token (--token)")) for c in options.controls
    }
    report = AuditReport(
        base,
        datetime.now(UTC).isoformat(timespec="seconds"),
        {"only": list(options.controls), "token": options.token is not None},
        list(answers.values()),
    )
    with httpx.Client(timeout=options.timeout_s) as http:
        _reachable(http, base)
        probes.discovery(answers, http, base)
        probes.without_token(answers, http, base)
        probes.capabilities(answers, http, base)
        if options.token is not None:
            claims = probes.token_claims(answers, options.token)
            patient = (claims or {}).get("patient")
            if isinstance(patient, str) and patient:
                probes.compartment(answers, http, base, options.token, patient)
    return report


def _reachable(http: httpx.Client, base: str) -> None:
    """A target that does not answer at all is a usage error, not twelve failed items."""
    try:
        http.get(f"{base}/metadata", headers=probes.FHIR_JSON)
    except httpx.HTTPError as exc:
        raise LabError(
            f"cannot reach {base} ({type(exc).__name__})",
            "check the URL (the FHIR base, e.g. http://localhost:8080/fhir) and that it is up",
        ) from None

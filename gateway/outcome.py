"""FHIR `OperationOutcome` responses: every refusal the gateway makes is rendered here."""

from __future__ import annotations

import json
import math

from starlette.responses import Response

from gateway.denial import Denial

FHIR_JSON = "application/fhir+json"

# HTTP status -> OperationOutcome issue code (FHIR issue-type value set)
_ISSUE_CODES = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    406: "not-supported",
    413: "too-costly",
    429: "throttled",
    502: "transient",
    503: "transient",
    504: "timeout",
}


def denial_response(denial: Denial) -> Response:
    """A refusal as a FHIR OperationOutcome; 401/403 carry RFC 6750 `WWW-Authenticate`, a
    refusal that says when to come back `Retry-After` (whole seconds, rounded up)."""
    headers = {}
    if denial.retry_after_s is not None:
        headers["Retry-After"] = str(max(1, math.ceil(denial.retry_after_s)))
    if denial.bearer_error:
        reason = header_safe(denial.reason.replace('"', "'"))
        headers["WWW-Authenticate"] = (
            f'Bearer realm="fhir", error="{denial.bearer_error}", error_description="{reason}"'
        )
    prefix = f"[{denial.control}] " if denial.control else ""
    return operation_outcome(denial.status, prefix + denial.reason, headers)


def header_safe(text: str, limit: int = 300) -> str:
    """`text` as a header value may carry it: printable ASCII only (anything else escaped, so a
    client's own characters in a refusal's reason can neither break the header nor add one)."""
    out = "".join(c if " " <= c <= "~" else c.encode("unicode_escape").decode() for c in text)
    return out if len(out) <= limit else out[: limit - 3] + "..."


def operation_outcome(
    status: int, diagnostics: str, headers: dict[str, str] | None = None, *, error: bool = True
) -> Response:
    """`error=False`: an outcome that reports, not refuses (severity information)."""
    body = {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "error" if error else "information",
                "code": _ISSUE_CODES.get(status, "processing") if error else "informational",
                "diagnostics": diagnostics,
            }
        ],
    }
    return Response(json.dumps(body), status_code=status, media_type=FHIR_JSON, headers=headers)

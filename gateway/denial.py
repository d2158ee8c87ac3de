"""The one exception a stage raises to refuse a request; rendered as an OperationOutcome."""

from __future__ import annotations


class Denial(Exception):
    """A refusal: HTTP status, the control that refused (C01..C12, or None for the basics such as
    a missing token), a reason for the client and the audit log, and for 401/403 the RFC 6750
    error code that goes into `WWW-Authenticate`; for 429 (and 503) the seconds a client should
    wait, which goes into `Retry-After`."""

    def __init__(
        self,
        status: int,
        reason: str,
        control: str | None = None,
        bearer_error: str | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.control = control
        self.retry_after_s = retry_after_s
        self.bearer_error = bearer_error or {
            401: "invalid_token",
            403: "insufficient_scope",
        }.get(status)


def unauthorized(reason: str, control: str | None = None) -> Denial:
    return Denial(401, reason, control, "invalid_token")


def forbidden(reason: str, control: str | None = None) -> Denial:
    return Denial(403, reason, control, "insufficient_scope")


def bad_request(reason: str) -> Denial:
    return Denial(400, reason, None, None)

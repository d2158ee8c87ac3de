"""Errors of SMART flows, in OAuth 2.0 terms (RFC 6749 §5.2 / §4.1.2.1)."""

from __future__ import annotations

from labcore.errors import LabError


class SmartError(LabError):
    """The authorization server refused a step; `error` is the OAuth error code."""

    def __init__(self, step: str, error: str, description: str = "", status: int | None = None):
        detail = f": {description}" if description else ""
        super().__init__(
            f"{step} refused: {error}{detail}" + (f" (HTTP {status})" if status else "")
        )
        self.step = step
        self.error = error
        self.description = description
        self.status = status

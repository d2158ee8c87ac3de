"""The base of every error a user can cause; each carries a fix hint.

The CLI turns any `LabError` into one clear message and a non-zero exit, never a traceback. The
gateway, the seeder and the simulator raise it (or a subclass) for what a user must fix.
"""

from __future__ import annotations


class LabError(Exception):
    """Base of every error the lab reports to a user."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  fix: {self.hint}" if self.hint else self.message

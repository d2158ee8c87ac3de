"""Errors a user can cause while starting or stopping the lab (subclasses of `LabError`)."""

from __future__ import annotations

from labcore.errors import LabError


class ToolMissing(LabError):
    """A program the lab needs (Java, Maven) is not installed or too old."""


class PortInUse(LabError):
    """A port the lab wants to bind is held by another process."""

    def __init__(self, port: int, service: str, owner: str) -> None:
        super().__init__(
            f"port {port} (for {service}) is already in use by {owner}",
            f"stop that process, or choose another port, e.g. FHIRLAB_{service.upper()}_PORT",
        )
        self.port = port
        self.owner = owner


class ServiceDied(LabError):
    """A server process exited while the lab waited for it to become ready."""

    def __init__(
        self,
        service: str,
        returncode: int | None,
        log_tail: str,
        log_path: str,
        explained: tuple[str, str] | None = None,  # (cause, fix) read from the log, if known
    ) -> None:
        cause, fix = explained or ("", "")
        super().__init__(
            f"{service} exited during start (exit code {returncode})"
            + (f": {cause}" if cause else "")
            + f"; last lines of {log_path}:\n{log_tail}",
            (f"{fix}; " if fix else "") + f"read the whole log with `fhirlab logs {service}`",
        )
        self.service = service
        self.returncode = returncode


class ReadinessTimeout(LabError):
    """A server did not become ready in time."""


class DownloadFailed(LabError):
    """An artifact could not be downloaded or built."""

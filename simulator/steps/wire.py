"""What the step interpreter hands a driver to send, and what the driver hands back.

A `StepRequest` is complete: absolute URL, headers (token included) and body bytes, so a driver
only sends it, with its own transport (httpx for the replay, Locust's client under load). A
`Reply` is the answer as the interpreter reads it; `status_code` None means no answer (the
transport failed, `error` says how). No HTTP library here: both drivers' transports fit.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

FHIR_JSON: Final = "application/fhir+json"
FHIR_NDJSON: Final = "application/fhir+ndjson"
FORM: Final = "application/x-www-form-urlencoded"
_CHARSET: Final = re.compile(r"charset=\"?([\w.:-]+)", re.IGNORECASE)


class Part(StrEnum):
    """Which of its step's requests a request is (drivers name or keep them by it)."""

    REQUEST = "request"  # a request, a burst's, a walk's first page, an export kick-off
    NEXT_PAGE = "next page"  # a page walk following a `next` link
    POLL = "poll"  # an export's status poll
    DOWNLOAD = "download"  # an export's file


@dataclass(frozen=True, slots=True)
class StepRequest:
    step: str  # the step's name (the replay's record names it)
    probes: tuple[str, ...]
    method: str
    url: str  # absolute, not percent-encoded
    headers: Mapping[str, str]
    content: bytes | None = None
    part: Part = Part.REQUEST


@dataclass(frozen=True, slots=True)
class Reply:
    status_code: int | None  # None: no answer
    headers: Mapping[str, str] = field(default_factory=dict)
    content: bytes = b""
    elapsed_ms: float = 0.0
    error: str | None = None  # why there is no answer

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    def header(self, name: str) -> str:
        return header(self.headers, name)

    @property
    def text(self) -> str:
        """The body decoded with its declared charset (UTF-8 by default)."""
        found = _CHARSET.search(self.header("content-type"))
        try:
            return self.content.decode(found.group(1) if found else "utf-8", errors="replace")
        except LookupError:
            return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON; ValueError if it is not JSON."""
        return json.loads(self.content)


Transport = Callable[[StepRequest], Reply]


def header(headers: Mapping[str, str] | None, name: str) -> str:
    """A header's value by case-insensitive name ("" if absent)."""
    name = name.lower()
    for key, value in (headers or {}).items():
        if key.lower() == name:
            return str(value)
    return ""

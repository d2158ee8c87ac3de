"""`METHOD relative-url`: the one request syntax of scenario steps."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal, cast

Method = Literal["GET", "POST", "PUT", "DELETE"]
METHODS: Final[tuple[Method, ...]] = ("GET", "POST", "PUT", "DELETE")
_URL: Final = re.compile(r"[A-Z$][^\s]*")


@dataclass(frozen=True, slots=True)
class RequestLine:
    method: Method
    url: str  # relative to the FHIR base, parameters unresolved

    def __str__(self) -> str:
        return f"{self.method} {self.url}"


def parse_request(text: str) -> RequestLine:
    """`GET Patient/{my_patient}` → RequestLine; ValueError naming what is allowed."""
    parts = text.split()
    if len(parts) != 2:
        raise ValueError(
            f"a request is 'METHOD relative-url' (e.g. 'GET Patient/{{my_patient}}'), got {text!r}"
        )
    method, url = parts
    if method not in METHODS:
        raise ValueError(f"method {method!r} is not allowed; allowed: {', '.join(METHODS)}")
    if not _URL.fullmatch(url):
        raise ValueError(
            f"url {url!r} must be relative to the FHIR base and start with a resource type or "
            "an operation (e.g. 'Patient/{my_patient}', 'Observation?patient={my_patient}', "
            "'$export'); no scheme, host or leading '/'"
        )
    return RequestLine(cast(Method, method), url)

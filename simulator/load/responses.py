"""Responses under load: what each counts as (ok, denied by the gateway's policy, or failed), and
where a search's next page is.

A policy refusal is the gateway doing its job, not a failure of the run: a 401/403 carrying the
gateway's `WWW-Authenticate: Bearer` challenge, or a 400/401/403/404/406/429 `OperationOutcome`
whose diagnostics name the refusing control (`[C08] ...`; a read by id of a resource the token
may not see is answered 404, as for one that does not exist). Failures are transport errors, 5xx
and any other unexpected status.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Final

from simulator.replay.fhir import next_link, refusing_control

REFUSAL_STATUSES: Final = frozenset({400, 401, 403, 404, 406, 429})
CHALLENGE_STATUSES: Final = frozenset({401, 403})
_NEXT: Final = re.compile(rb'"relation"\s*:\s*"next"\s*,\s*"url"\s*:\s*"([^"]+)"')


class Outcome(StrEnum):
    OK = "ok"
    DENIED = "denied"
    FAILED = "failed"


def classify(
    status: int | None, body: bytes | str | None, headers: Mapping[str, str] | None = None
) -> tuple[Outcome, str | None]:
    """(outcome, refusing control or None) of one response; `status` None: no response."""
    if status is None or status <= 0:
        return Outcome.FAILED, None
    if 200 <= status < 400:
        return Outcome.OK, None
    if status not in REFUSAL_STATUSES:
        return Outcome.FAILED, None
    control = refusing_control(_json(body))
    if control is not None:
        return Outcome.DENIED, control
    challenge = _header(headers, "www-authenticate")
    if status in CHALLENGE_STATUSES and challenge.lower().startswith("bearer"):
        return Outcome.DENIED, None
    if status == 429 and _is_outcome(_json(body)):
        return Outcome.DENIED, None
    return Outcome.FAILED, None


def _json(body: bytes | str | None) -> object:
    if not body:
        return None
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None


def _is_outcome(body: object) -> bool:
    return isinstance(body, Mapping) and body.get("resourceType") == "OperationOutcome"


def _header(headers: Mapping[str, str] | None, name: str) -> str:
    if not headers:
        return ""
    for key, value in headers.items():
        if key.lower() == name:
            return str(value)
    return ""


def next_page(body: bytes | None) -> str | None:
    """The `next` link of a search Bundle, found without parsing the whole (large) page."""
    if not body:
        return None
    found = _NEXT.search(body)
    if found:
        return found.group(1).decode("utf-8", "replace")
    if b'"next"' not in body:
        return None
    return next_link(_json(body))  # the link's keys in another order: parse the page

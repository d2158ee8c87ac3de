"""What kind of FHIR request a step request is: the unit a control's cost is read in.

A read by id, a search and a write cost the gateway (and HAPI) very different amounts, far more
than any control adds, so a cost is only comparable within one kind (`simulator/load/cost.py`).
A refusal is not a kind of request but an outcome; the load run counts refusals apart.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import urlsplit

from simulator.steps.wire import Part, StepRequest

READ: Final = "read"  # a read by id, a version read
SEARCH: Final = "search"  # a search of any level, a history, a page of either
WRITE: Final = "write"  # create, update, patch, delete, a batch or transaction
OPERATION: Final = "operation"  # `$everything`, `$export` and the like
EXPORT: Final = "export"  # an export's status polls and file downloads
OTHER: Final = "other"  # the CapabilityStatement, anything else
KINDS: Final = (READ, SEARCH, WRITE, OPERATION, EXPORT, OTHER)


def request_kind(request: StepRequest, base_path: str = "/fhir") -> str:
    if request.part is Part.NEXT_PAGE:
        return SEARCH
    if request.part in (Part.POLL, Part.DOWNLOAD):
        return EXPORT
    return kind_of(request.method, request.url, base_path)


def kind_of(method: str, url: str, base_path: str = "/fhir") -> str:
    """The kind of `method url` (absolute or below the FHIR base at `base_path`)."""
    path = urlsplit(url).path
    base = base_path.rstrip("/")
    if base and (path == base or path.startswith(base + "/")):
        path = path[len(base) :]
    segments = [s for s in path.split("/") if s]
    if any(s.startswith("$") for s in segments):
        return OPERATION
    method = method.upper()
    if segments and segments[-1] == "_search":
        return SEARCH
    if method in ("POST", "PUT", "PATCH", "DELETE"):
        return WRITE
    if segments == ["metadata"] or segments[:1] == [".well-known"]:
        return OTHER
    if "_history" in segments:
        return READ if segments[-1] != "_history" else SEARCH
    return READ if len(segments) == 2 else SEARCH

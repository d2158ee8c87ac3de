"""Reading the gateway's answers to step requests, for each driver's record.

`record` (the replay's) makes a `StepResult` of an exchange: status, refusing control (the
gateway's `[Cnn]` diagnostics), the resources, `Type/id`s and patients returned, from a JSON, XML
or NDJSON body. `classify` (the load run's) judges an answer without reading successful bodies:
ok, denied by the gateway's policy, or failed. A policy refusal is the gateway doing its job, not
a failure of the run: a 401/403 carrying the gateway's `WWW-Authenticate: Bearer` challenge, or a
400/401/403/404/406/429 `OperationOutcome` whose diagnostics name the refusing control (`[C08]
...`; a read by id of a resource the token may not see is answered 404, as for one that does not
exist). Failures are transport errors, 5xx and any other unexpected status. `next_page` finds a
search Bundle's `next` link without parsing a whole (large) page.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Final, Protocol

from simulator.replay.fhir import (
    ndjson_resources,
    next_link,
    patients_reached,
    refusing_control,
    resource_keys,
    resources_of,
    xml_body,
)
from simulator.replay.model import StepResult
from simulator.steps.wire import Reply, StepRequest, header

REFUSAL_STATUSES: Final = frozenset({400, 401, 403, 404, 406, 429})
CHALLENGE_STATUSES: Final = frozenset({401, 403})
_NEXT: Final = re.compile(rb'"relation"\s*:\s*"next"\s*,\s*"url"\s*:\s*"([^"]+)"')


class Answer(Protocol):
    """An HTTP answer: a `Reply`, or an `httpx.Response`."""

    @property
    def status_code(self) -> Any: ...
    @property
    def headers(self) -> Mapping[str, str]: ...
    @property
    def content(self) -> bytes: ...
    @property
    def text(self) -> str: ...
    def json(self) -> Any: ...


# ---- the replay's record ------------------------------------------------------------------
def record(request: StepRequest, reply: Reply, bases: tuple[str, ...] = ()) -> StepResult:
    """The StepResult of one exchange (`bases`: FHIR bases of absolute patient references)."""
    if reply.status_code is None:
        return StepResult(
            request.step,
            request.method,
            request.url,
            None,
            elapsed_ms=reply.elapsed_ms,
            probes=request.probes,
            error=reply.error,
        )
    return describe(
        request.step, request.probes, request.method, request.url, reply, reply.elapsed_ms, bases
    )


def describe(
    step: str,
    probes: tuple[str, ...],
    method: str,
    url: str,
    resp: Answer,
    elapsed_ms: float,
    bases: tuple[str, ...] = (),
) -> StepResult:
    """A StepResult from an answer (JSON, XML or NDJSON body)."""
    body: Any = None
    resources: list[Any] = []
    content_type = header(resp.headers, "content-type")
    if "ndjson" in content_type:
        resources = ndjson_resources(resp.text)
    elif "xml" in content_type and resp.content:
        body = xml_body(resp.content)
        resources = resources_of(body) if 200 <= resp.status_code < 300 else []
    elif resp.content:
        try:
            body = resp.json()
        except ValueError:
            body = None
        resources = resources_of(body) if 200 <= resp.status_code < 300 else []
    return StepResult(
        step=step,
        method=method,
        url=url,
        status=resp.status_code,
        control=refusing_control(body),
        results=len(resources),
        patients=tuple(sorted(patients_reached(resources, bases))),
        resources=tuple(resource_keys(resources)),
        elapsed_ms=round(elapsed_ms, 1),
        probes=probes,
    )


# ---- the load run's judgement -------------------------------------------------------------
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
    challenge = header(headers, "www-authenticate")
    if status in CHALLENGE_STATUSES and challenge.lower().startswith("bearer"):
        return Outcome.DENIED, None
    if status == 429 and _is_outcome(_json(body)):
        return Outcome.DENIED, None
    return Outcome.FAILED, None


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


def _json(body: bytes | str | None) -> object:
    if not body:
        return None
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None


def _is_outcome(body: object) -> bool:
    return isinstance(body, Mapping) and body.get("resourceType") == "OperationOutcome"

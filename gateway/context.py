"""What the gateway knows about one request while it passes through the stages."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_plus

from gateway.classify import FhirRequest, Params
from gateway.denial import Denial
from gateway.returned import Returned
from gateway.token_verifier import VerifiedToken

# The parts of the request that stages may rewrite before it goes upstream: query parameters,
# path, body, conditional-create criteria.
UpstreamRequest = tuple[Params | None, str | None, bytes | None, str | None]
# A check of one returned resource; returns a Denial if it must not go out.
ResourceCheck = Callable[[Returned], Denial | None]


@dataclass(frozen=True, slots=True)
class Finding:
    """A control's verdict on this request: `deny` (enforced) or `monitor` (recorded only)."""

    control: str | None
    action: str  # deny | monitor | filter (resources withheld from a streamed answer)
    status: int
    reason: str


@dataclass(slots=True)
class RequestContext:
    request_id: str
    method: str
    raw_path: str
    raw_query: str
    bearer: str | None = None
    body: bytes | None = None  # buffered only where a stage must read it (batch, POST _search)
    started: float = field(default_factory=time.perf_counter)
    fhir: FhirRequest | None = None
    token: VerifiedToken | None = None
    client_class: str | None = None
    findings: list[Finding] = field(default_factory=list)
    stage_ms: dict[str, float] = field(default_factory=dict)
    # Query parameters to send upstream instead of the client's (narrowing, _count cap).
    upstream_params: Params | None = None
    # The path below the FHIR base to send upstream instead of the client's (`Observation`
    # for a compartment search `Patient/P/Observation`, which HAPI does not serve as such).
    upstream_path: str | None = None
    # `_summary=text` on a read: HAPI answers it as HTML whatever is asked, so the gateway asks
    # for the whole resource, checks it, and cuts it down itself
    text_summary: bool = False
    # Checks each resource in the response must pass (compartment, tenant, scope constraints).
    resource_checks: list[tuple[str, ResourceCheck]] = field(default_factory=list)
    # The same, from checks in monitor mode: a resource they would refuse is recorded, not kept
    # back.
    monitor_checks: list[tuple[str, ResourceCheck]] = field(default_factory=list)
    patients: set[str] = field(default_factory=set)
    result_count: int | None = None
    status: int = 0
    simulated_time: float | None = None  # the lab's simulated clock (gateway/clock.py)
    # Stored versions read from HAPI before a write by id (`gateway/current.py`), so the stages
    # that check them (C08, C10) share one read; created on the first read.
    stored: dict[tuple[str, str], dict[str, Any] | None] | None = None
    # A conditional create's match criteria (`If-None-Exist`, or a batch entry's
    # `request.ifNoneExist`) as the stages narrow them (C08 to the patient, C10 to the tenant),
    # so that whether a resource outside them exists cannot be probed; sent upstream instead.
    if_none_exist: str | None = None
    # The body parsed as JSON, with the body it was parsed from (`json_body`).
    parsed: tuple[bytes, Any] | None = None

    def upstream_request(self) -> UpstreamRequest:
        """What the stages may change of the request that goes upstream (see `restore_...`)."""
        return (self.upstream_params, self.upstream_path, self.body, self.if_none_exist)

    def restore_upstream_request(self, request: UpstreamRequest) -> None:
        """Undo a stage's changes to the request that goes upstream (a monitored control)."""
        if request != self.upstream_request():
            self.upstream_params, self.upstream_path, self.body, self.if_none_exist = request
        if self.body is not None:
            self.parsed = None  # a stage may have changed the parsed body in place

    def json_body(self) -> Any:
        """The body parsed as JSON, once per body (ValueError if it is not JSON)."""
        body = self.body or b""
        if self.parsed is None or self.parsed[0] is not body:
            self.parsed = (body, json.loads(body))
        return self.parsed[1]

    def set_json_body(self, value: Any) -> None:
        """Replace the body by `value`, serialised (what goes upstream)."""
        self.body = json.dumps(value).encode()
        self.parsed = (self.body, value)

    def narrow_if_none_exist(self, name: str, value: str) -> None:
        """Add `name=value` to a conditional create's match criteria (if it has any; the stages
        call this for creates only)."""
        if self.if_none_exist:
            self.if_none_exist += f"&{quote_plus(name)}={quote_plus(value)}"

    @property
    def params(self) -> Params:
        if self.upstream_params is not None:
            return self.upstream_params
        return self.fhir.params if self.fhir else ()

    @property
    def denied(self) -> Finding | None:
        return next((f for f in self.findings if f.action == "deny"), None)

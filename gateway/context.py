"""What the gateway knows about one request while it passes through the stages."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gateway.classify import FhirRequest, Params
from gateway.denial import Denial
from gateway.returned import Returned
from gateway.tokens import VerifiedToken

# A check of one returned resource; returns a Denial if it must not go out.
ResourceCheck = Callable[[Returned], Denial | None]


@dataclass(frozen=True, slots=True)
class Finding:
    """A control's verdict on this request: `deny` (enforced) or `monitor` (recorded only)."""

    control: str | None
    action: str  # deny | monitor
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
    # Checks each resource in the response must pass (compartment, tenant, scope constraints).
    resource_checks: list[tuple[str, ResourceCheck]] = field(default_factory=list)
    patients: set[str] = field(default_factory=set)
    result_count: int | None = None
    status: int = 0
    simulated_time: float | None = None  # the lab's simulated clock (gateway/clock.py)
    # Stored versions read from HAPI before a write by id (`gateway/current.py`), so the stages
    # that check them (C08, C10) share one read; created on the first read.
    stored: dict[tuple[str, str], dict[str, Any] | None] | None = None

    @property
    def params(self) -> Params:
        if self.upstream_params is not None:
            return self.upstream_params
        return self.fhir.params if self.fhir else ()

    @property
    def denied(self) -> Finding | None:
        return next((f for f in self.findings if f.action == "deny"), None)

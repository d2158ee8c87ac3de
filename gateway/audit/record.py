"""One audit record per request that reaches the gateway (control C06).

A record is built once, when the response is known, and never changed: the audit log, the
anomaly detectors and the FHIR AuditEvent mapping all read the same frozen object. It holds no
credential: `token_id` is the token's `jti`, or a hash of the token when it has none
(`token_id()` below).
"""

from __future__ import annotations

import hashlib
import json
import operator
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Final, Literal

__all__ = ["DECISIONS", "AuditRecord", "Decision", "token_id"]

Decision = Literal["allow", "deny", "monitor", "filter"]
DECISIONS: Final[frozenset[str]] = frozenset({"allow", "deny", "monitor", "filter"})


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditRecord:
    """What happened to one request.

    `decision` is `allow`, `deny`, `monitor` (allowed, but `control` would have denied it in
    enforcing mode) or `filter` (allowed, with resources `control` withheld from a streamed
    answer: lines of a bulk-export file). `patients` are the ids of the patients whose data the
    request touched (read, returned, written): the raw material of the blast radius. `stage_ms`
    holds per-stage timings keyed by stage name. `alerts` are the ids of the anomaly alerts this
    request raised. `remote_addr` is the client's network address, when known (BALP wants it on
    the client agent). `simulated_time` is the instant the anomaly detectors judged the request
    at, when the lab's simulated clock stamped it (`gateway/clock.py`; `ts` stays the real
    time). The dict in `stage_ms` must not be mutated once the record is appended.
    """

    ts: float
    request_id: str
    method: str
    path: str
    query: str = ""
    client_id: str | None = None
    subject: str | None = None
    tenant: str | None = None
    token_id: str | None = None
    patient_context: str | None = None
    patients: tuple[str, ...] = ()
    interaction: str = ""
    resource_type: str | None = None
    operation: str | None = None
    decision: Decision
    control: str | None = None
    reason: str = ""
    status: int
    result_count: int | None = None
    latency_ms: float = 0.0
    stage_ms: dict[str, float] = field(default_factory=dict)
    alerts: tuple[str, ...] = ()
    remote_addr: str | None = None
    simulated_time: float | None = None

    def __post_init__(self) -> None:
        if self.decision not in DECISIONS:
            raise ValueError(
                f"decision must be allow, deny, monitor or filter; got {self.decision!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON-ready data, keys in field order (tuples become lists)."""
        data = dict(zip(FIELD_NAMES, _FIELD_VALUES(self), strict=True))
        data["patients"] = list(self.patients)
        data["alerts"] = list(self.alerts)
        data["stage_ms"] = dict(self.stage_ms)
        return data

    def to_json(self) -> str:
        """Compact JSON, keys in field order (stable across runs and versions)."""
        return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AuditRecord:
        """Rebuild a record from `to_dict()` output or an audit-log line; other keys (`seq`,
        `prev`, `hash`, `kind`) are ignored, missing optional ones take their defaults."""
        values = {name: data[name] for name in FIELD_NAMES if name in data}
        for name in ("patients", "alerts"):
            if name in values:
                values[name] = tuple(values[name])
        if "stage_ms" in values:
            values["stage_ms"] = dict(values["stage_ms"])
        return cls(**values)


FIELD_NAMES: Final[tuple[str, ...]] = tuple(f.name for f in fields(AuditRecord))
# every field's value at once, in field order (a third of a dict comprehension's time)
_FIELD_VALUES: Final = operator.attrgetter(*FIELD_NAMES)


def token_id(token: str, jti: str | None = None) -> str:
    """A stable, non-secret id for an access token: its `jti` when it has one, else
    `sha256:` + the first 32 hex digits (128 bits) of SHA-256 over the token's bytes.

    The token itself must never be logged: a bearer token in a log is a usable credential.
    """
    if jti:
        return jti
    return "sha256:" + hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()[:32]

"""Helpers shared by the audit tests."""

from __future__ import annotations

from typing import Any

from gateway.audit import AuditRecord


def record(n: int = 0, **overrides: Any) -> AuditRecord:
    """A plausible allowed read, numbered `n`; any field can be overridden."""
    fields: dict[str, Any] = {
        "ts": 1_718_000_000.0 + n,
        "request_id": f"req-{n}",
        "method": "GET",
        "path": "/fhir/Patient/p1",
        "query": "",
        "client_id": "scheduler",
        "subject": "user-1",
        "tenant": "north",
        "token_id": "jti-1",
        "patient_context": "p1",
        "patients": ("p1",),
        "interaction": "read",
        "resource_type": "Patient",
        "decision": "allow",
        "status": 200,
        "result_count": 1,
        "latency_ms": 3.25,
        "stage_ms": {"auth": 0.5, "upstream": 2.5},
    }
    fields.update(overrides)
    return AuditRecord(**fields)

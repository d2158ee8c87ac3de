"""Helpers shared by the anomaly tests."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from gateway.audit import AuditRecord

NEW_YORK = ZoneInfo("America/New_York")
# Wednesday 12 June 2024, 12:00 in New York: inside default business hours
NOON = datetime(2024, 6, 12, 12, 0, tzinfo=NEW_YORK).timestamp()
# Saturday 15 June 2024, 03:00 in New York: outside them
SATURDAY_NIGHT = datetime(2024, 6, 15, 3, 0, tzinfo=NEW_YORK).timestamp()


def rec(n: int = 0, **overrides: Any) -> AuditRecord:
    """An allowed read by the `scheduler` client at `NOON + n` s; any field overridable."""
    fields: dict[str, Any] = {
        "ts": NOON + n,
        "request_id": f"req-{n}",
        "method": "GET",
        "path": "/fhir/Appointment/a1",
        "client_id": "scheduler",
        "subject": "user-1",
        "tenant": "north",
        "token_id": "jti-1",
        "patient_context": "p1",
        "interaction": "read",
        "resource_type": "Appointment",
        "decision": "allow",
        "status": 200,
    }
    fields.update(overrides)
    return AuditRecord(**fields)


def search(n: int, resource_type: str, query: str, **overrides: Any) -> AuditRecord:
    """A type-level search `GET /fhir/<type>?<query>`."""
    fields: dict[str, Any] = {
        "path": f"/fhir/{resource_type}",
        "query": query,
        "interaction": "search-type",
        "resource_type": resource_type,
    }
    return rec(n, **{**fields, **overrides})

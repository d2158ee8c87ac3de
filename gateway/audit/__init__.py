"""The audit trail (control C06): one hash-chained record per request, plus alert events.

- `AuditRecord` — what happened to one request (frozen); `token_id()` names a token safely.
- `AuditLog` — append-only JSONL, hash-chained, batched off the event loop; `verify_chain()`
  checks a file and returns a `ChainReport`. The line format is documented in `chain`.
- `to_audit_event()` — a record as a FHIR R4 `AuditEvent` in the IHE BALP shape.
"""

from gateway.audit.chain import GENESIS, ChainError, ChainReport, canonical, verify_chain
from gateway.audit.fhir import to_audit_event
from gateway.audit.log import AuditLog
from gateway.audit.record import DECISIONS, AuditRecord, Decision, token_id
from gateway.audit.writer import BatchWriter, Encoded, WriteError, WriterClosedError

__all__ = [
    "DECISIONS",
    "GENESIS",
    "AuditLog",
    "AuditRecord",
    "BatchWriter",
    "ChainError",
    "ChainReport",
    "Decision",
    "Encoded",
    "WriteError",
    "WriterClosedError",
    "canonical",
    "to_audit_event",
    "token_id",
    "verify_chain",
]

"""Control C06 at run time: every request that reaches the gateway becomes exactly one audit
record in the hash-chained log, the anomaly detectors watch the stream, and their alerts go to the
alerts file and into the same chain."""

from __future__ import annotations

import time
from pathlib import Path

from gateway.anomaly import AlertSink, AnomalyEngine, observe_and_log, profiles_from_scopes
from gateway.anomaly.timelines import SimulatedTimelines
from gateway.audit import AuditLog, AuditRecord
from gateway.audit.fhir_poster import AuditEventPoster
from gateway.config import GatewayConfig
from gateway.context import RequestContext

AUDIT_FILE = "audit.jsonl"
ALERTS_FILE = "alerts.jsonl"


def to_record(ctx: RequestContext, latency_ms: float) -> AuditRecord:
    findings = ctx.findings
    if findings:
        denied = ctx.denied
        filtered = next((f for f in findings if f.action == "filter"), None)
        monitored = next((f for f in findings if f.action == "monitor"), None)
        reason = "; ".join(f"[{f.control or '-'}] {f.reason}" for f in findings)
    else:  # most requests: nothing to say
        denied = filtered = monitored = None
        reason = ""
    finding = denied or filtered or monitored
    fhir, token = ctx.fhir, ctx.token
    return AuditRecord(
        ts=time.time(),
        request_id=ctx.request_id,
        method=ctx.method,
        path=ctx.raw_path,
        query=ctx.raw_query,
        client_id=token.client_id if token else None,
        subject=token.subject if token else None,
        tenant=token.tenant if token else None,
        token_id=token.token_id if token else None,
        patient_context=token.patient if token else None,
        patients=tuple(sorted(ctx.patients)) if ctx.patients else (),
        interaction=fhir.interaction.value if fhir else "invalid",
        resource_type=fhir.resource_type if fhir else None,
        operation=fhir.operation if fhir else None,
        decision="deny"
        if denied
        else "filter"
        if filtered
        else "monitor"
        if monitored
        else "allow",
        control=finding.control if finding else None,
        reason=reason,
        status=ctx.status,
        result_count=ctx.result_count,
        latency_ms=round(latency_ms, 3),
        stage_ms={k: round(v, 4) for k, v in ctx.stage_ms.items()},
        simulated_time=ctx.simulated_time,
    )


class GatewayAudit:
    """The gateway's audit sink: `record` is O(1) on the event loop (writes happen on the log's
    writer thread); `aclose` flushes everything, so a graceful shutdown loses no record.

    Records stamped by the lab's simulated clock go to `simulated` (their own detectors, see
    `gateway/anomaly/timelines.py`), all others to `engine`."""

    def __init__(
        self,
        directory: Path,
        engine: AnomalyEngine,
        simulated: SimulatedTimelines | None = None,
        fhir_events: AuditEventPoster | None = None,
    ) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.log = AuditLog(directory / AUDIT_FILE)
        self.alerts = AlertSink(directory / ALERTS_FILE, audit=self.log)
        self.engine = engine
        self.simulated = simulated
        self.fhir_events = fhir_events

    @classmethod
    def from_config(cls, config: GatewayConfig, directory: Path) -> GatewayAudit:
        policy = config.policy
        profiles = {
            **profiles_from_scopes(config.client_scopes),
            **{cid: frozenset(types) for cid, types in config.client_declared.items()},
        }

        def new_engine() -> AnomalyEngine:
            return AnomalyEngine.from_config(
                policy.detectors,
                profiles=profiles,
                population_clients=policy.operations.export_clients,
            )

        simulated = SimulatedTimelines(new_engine) if policy.clock_header else None
        fhir_events = (
            AuditEventPoster(config.settings.upstream, config.public_base)
            if policy.audit.fhir_audit_events
            else None
        )
        return cls(directory, new_engine(), simulated, fhir_events)

    def record(self, ctx: RequestContext, latency_ms: float) -> None:
        self.record_done(to_record(ctx, latency_ms))

    def record_done(self, record: AuditRecord) -> None:
        """Log a finished request's record (one the fast lane served arrives as such)."""
        if record.simulated_time is not None and self.simulated is not None:
            logged = observe_and_log(record, self.log, self.simulated, self.alerts)
        else:
            logged = observe_and_log(record, self.log, self.engine, self.alerts)
        if self.fhir_events is not None:
            self.fhir_events.offer(logged)

    async def aclose(self) -> None:
        if self.fhir_events is not None:
            await self.fhir_events.aclose()
        await self.alerts.aclose()
        await self.log.aclose()

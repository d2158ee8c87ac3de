"""What one replay records: each HTTP exchange, the session end, the verdicts (stable JSON)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

RUN_SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True)
class StepResult:
    """One HTTP exchange of a step (a page walk or an export records several)."""

    step: str
    method: str
    url: str
    status: int | None  # None: no response (transport error)
    control: str | None = None  # the refusing control, from `[Cnn]` diagnostics
    results: int = 0  # resources returned
    patients: tuple[str, ...] = ()  # patients whose compartment the returned resources are in
    resources: tuple[str, ...] = ()  # `Type/id` returned
    elapsed_ms: float = 0.0
    probes: tuple[str, ...] = ()
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def refused(self) -> bool:
        return self.status is not None and self.status >= 400

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["patients"] = list(self.patients)
        data["resources"] = len(self.resources)
        data["probes"] = list(self.probes)
        return data


@dataclass(frozen=True, slots=True)
class ScopeProbe:
    """What the AS did with a `scope_probe` request (C11)."""

    outcome: str  # refused | down-scoped | granted
    requested: tuple[str, ...]
    granted: tuple[str, ...]
    error: str | None = None


@dataclass(frozen=True, slots=True)
class SessionEndResult:
    revoked: bool = False
    replay_attempted: bool = False
    replay_accepted: bool | None = None
    replay_status: int | None = None
    replay_control: str | None = None
    replay_accepted_at_once: bool | None = None  # before the gateway's introspection cache expired
    replay_delay_s: float | None = None  # when the decisive replay was sent, after the session end
    refresh_attempted: bool = False
    refresh_succeeded: bool | None = None
    refresh_error: str | None = None


@dataclass(frozen=True, slots=True)
class ExposureWindow:
    """Seconds a stolen credential stays usable after the session, and where they come from."""

    seconds: float | None  # None: unbounded (offline token without expiry)
    access_token_s: float = 0.0
    refresh_token_s: float = 0.0
    offline: bool = False
    note: str = ""


@dataclass(frozen=True, slots=True)
class ExpectationResult:
    control: str
    expected: str
    actual: str
    ok: bool
    evidence: str


@dataclass
class ScenarioRun:
    scenario: str
    kind: str
    client: str
    tenant: str
    launch: str
    bindings: dict[str, str]
    token: dict[str, Any] = field(default_factory=dict)
    scope_probe: ScopeProbe | None = None
    auth_error: str | None = None
    steps: list[StepResult] = field(default_factory=list)
    session_end: SessionEndResult = field(default_factory=SessionEndResult)
    exposure: ExposureWindow = field(default_factory=lambda: ExposureWindow(0.0))
    verdicts: dict[str, str] = field(default_factory=dict)
    evidence: dict[str, str] = field(default_factory=dict)
    expectations: list[ExpectationResult] = field(default_factory=list)
    caught: list[str] = field(default_factory=list)
    alerts: list[str] = field(default_factory=list)  # detectors that fired for the client
    alerts_checked: bool = False  # False: the gateway's alerts were not readable (or C06 off)
    gateway: str = "lab"
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(e.ok for e in self.expectations)

    @property
    def failed(self) -> list[ExpectationResult]:
        return [e for e in self.expectations if not e.ok]

    @property
    def unexpected_refusals(self) -> list[str]:
        """Steps that probe nothing but were refused (the client's own work blocked)."""
        return sorted(
            {
                f"{s.step}: {s.status}{f' [{s.control}]' if s.control else ''}"
                for s in self.steps
                if s.refused and not s.probes and "post-session" not in s.step
            }
        )

    @property
    def blast_patients(self) -> list[str]:
        return sorted({p for s in self.steps for p in s.patients})

    @property
    def blast_resources(self) -> int:
        return len({r for s in self.steps for r in s.resources})

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": RUN_SCHEMA_VERSION,
            "scenario": self.scenario,
            "kind": self.kind,
            "client": self.client,
            "tenant": self.tenant,
            "launch": self.launch,
            "bindings": dict(self.bindings),
            "token": dict(self.token),
            "scope_probe": asdict(self.scope_probe) if self.scope_probe else None,
            "auth_error": self.auth_error,
            "steps": [s.to_dict() for s in self.steps],
            "session_end": asdict(self.session_end),
            "blast_radius": {
                "patients": len(self.blast_patients),
                "patient_ids": self.blast_patients,
                "resources": self.blast_resources,
            },
            "exposure_window": asdict(self.exposure),
            "verdicts": dict(sorted(self.verdicts.items())),
            "evidence": dict(sorted(self.evidence.items())),
            "expectations": [asdict(e) for e in self.expectations],
            "expectations_ok": self.ok,
            "caught": sorted(self.caught),
            "alerts": {"checked": self.alerts_checked, "raised": sorted(set(self.alerts))},
            "gateway": self.gateway,
            "unexpected_refusals": self.unexpected_refusals,
            "seconds": round(self.seconds, 3),
        }

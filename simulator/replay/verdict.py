"""Verdicts per control (pure): the configuration audit of the client, then the run's evidence.

Rules (docs/reference/scenarios.md "Verdicts"): a control is **violated** when the registration
breaks it or the granted token lets a probing step through; **held** when the registration
complies and every probing step was refused (by the AS or by a control that itself holds);
**n/a** when the run does not exercise it. A probe refused by a control the audit finds violated
was authorized by the token and only *caught*: that counts against the probed control. C09 is
violated by an old access token accepted after the session end (once the gateway's introspection
cache has expired) or a refresh that still works. C06 is judged from what the gateway's audit
trail shows of the run (`AuditEvidence`): violated when a request the run sent left no audit
record, when the detectors raised an alert on the client's behaviour (the anomaly the control
exists to catch happened), or when the run sent anomalous behaviour (a burst, a paging walk)
that no detector noticed; held when every request was recorded and nothing was anomalous. The
thresholds (the lifetime limit, which classes of client are operational AI) are the policy's the
run was judged under (`Thresholds.of`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from gateway.policy import Policy
from labcore.scopes import parse_scopes
from simulator.replay.model import ExpectationResult, ScopeProbe, SessionEndResult, StepResult

CONTROL_IDS = tuple(f"C{n:02d}" for n in range(1, 13))
HELD, VIOLATED, NA = "held", "violated", "n/a"
NARROWING = frozenset({"C08", "C10"})  # a narrowed 2xx within the patient's data is compliant


@dataclass(frozen=True, slots=True)
class ProfileFacts:
    """What the configuration audit needs from a client profile."""

    client_class: str
    scopes: tuple[str, ...]
    access_token_lifetime_s: int
    public: bool
    tenants: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class IssuedFacts:
    """What the authorization server actually issued this run (the first token): an issuance
    policy (`labcore/issuance.py`) may grant less than the registration allows."""

    requested: tuple[str, ...]  # the scopes the run asked for
    scopes: tuple[str, ...]  # the scopes granted
    lifetime_s: int
    offline: bool  # an offline refresh token came with it
    refused: bool = False  # no token: the AS refused the scopes asked for (invalid_scope)


@dataclass(frozen=True, slots=True)
class Thresholds:
    """What the policy demands of a client's registration (`client_policy` in the policy)."""

    max_lifetime_s: int
    operational_classes: frozenset[str]

    @classmethod
    def of(cls, policy: Policy) -> Thresholds:
        rules = policy.client_policy
        return cls(rules.max_token_lifetime_s, frozenset(rules.operational_classes))


@dataclass(frozen=True, slots=True)
class AuditEvidence:
    """What the gateway's audit trail shows of one run (read by `simulator/replay/alerts.py`)."""

    audited: bool  # the gateway keeps an audit trail this run could read
    sent: int  # requests the run sent and got an answer to
    recorded: int  # audit records of the run's client written since the run started
    alerts: tuple[str, ...] = ()  # detectors that raised an alert on the client during the run


def audit(
    facts: ProfileFacts, thresholds: Thresholds, issued: IssuedFacts | None = None
) -> dict[str, tuple[str, str]]:
    """Control → (verdict, evidence) from the registration and, where the authorization server
    issued less than the registration allows (`issued`), from what it issued: a registration
    that breaks C01–C05 holds when the issued token does not (the AS enforced it)."""
    found: dict[str, tuple[str, str]] = {}
    scopes = parse_scopes(" ".join(facts.scopes))
    wide = [s.raw for s in scopes.resource_scopes if s.context in ("system", "user")]
    system = [s.raw for s in scopes.resource_scopes if s.context == "system"]
    wildcards = [s.raw for s in scopes.wildcard_scopes]
    ai = facts.client_class in thresholds.operational_classes
    granted = parse_scopes(" ".join(issued.scopes)) if issued is not None else None
    asked = parse_scopes(" ".join(issued.requested)) if issued is not None else None

    def put(control: str, bad: bool, why_bad: str, why_ok: str) -> None:
        found[control] = (VIOLATED, why_bad) if bad else (HELD, why_ok)

    def at_issuance(
        control: str,
        registered: bool,
        asked_for: bool,
        still: bool,
        why_bad: str,
        why_ok: str,
        how: str,
    ) -> None:
        """`registered`: the registration breaks it; `asked_for`: the run asked for what breaks
        it; `still`: the issued token breaks it too. Only a request the AS narrowed is credited
        to the AS; what the run did not ask for says nothing of it."""
        if registered and asked_for and not still:
            done = "refused the token" if issued is not None and issued.refused else how
            found[control] = (HELD, f"the AS {done} (registered: {why_bad})")
        else:
            put(control, registered, why_bad, why_ok)

    at_issuance(
        "C01",
        ai and bool(wide),
        asked is not None and any(s.context != "patient" for s in asked.resource_scopes),
        granted is not None and any(s.context != "patient" for s in granted.resource_scopes),
        f"operational AI registered {' '.join(wide)}",
        "patient-level scopes only" if ai else "not an operational AI client",
        "granted patient-level scopes only",
    )
    lifetime = facts.access_token_lifetime_s
    limit = thresholds.max_lifetime_s
    at_issuance(
        "C02",
        lifetime > limit,
        issued is not None,
        issued is not None and issued.lifetime_s > limit,
        f"access token lifetime {lifetime} s > {limit} s",
        f"access token lifetime {lifetime} s",
        f"issued a {issued.lifetime_s if issued else 0} s token",
    )
    at_issuance(
        "C03",
        ai and "offline_access" in facts.scopes,
        issued is not None and "offline_access" in issued.requested,
        issued is not None and (issued.offline or "offline_access" in issued.scopes),
        "offline_access registered for an operational AI",
        "no offline_access for operational AI",
        "withheld offline access",
    )
    at_issuance(
        "C04",
        ai and bool(system),
        asked is not None and any(s.context == "system" for s in asked.resource_scopes),
        granted is not None and any(s.context == "system" for s in granted.resource_scopes),
        f"operational AI can ask {' '.join(system)} (bulk export)",
        "no system scopes for operational AI",
        "granted no system scope",
    )
    at_issuance(
        "C05",
        ai and bool(wildcards),
        asked is not None and bool(asked.wildcard_scopes),
        granted is not None and bool(granted.wildcard_scopes),
        f"wildcard scopes {' '.join(wildcards)}",
        "resource-specific scopes",
        f"narrowed the wildcards to {' '.join(issued.scopes) if issued else ''}",
    )
    put(
        "C07",
        ai and facts.public,
        "public client for a server-side operational AI",
        "confidential client" if not facts.public else "public, not an operational AI",
    )
    put(
        "C10",
        len(facts.tenants) > 1,
        f"registered in {len(facts.tenants)} tenants: {', '.join(facts.tenants)}",
        f"registered in {facts.tenants[0]} only",
    )
    system_wild = [s.raw for s in scopes.wildcard_scopes if s.context == "system"]
    if ai and system_wild:
        asked_wild = asked is not None and any(s.context == "system" for s in asked.wildcard_scopes)
        if asked_wild and granted is not None and not granted.wildcard_scopes:
            how = "refused" if issued is not None and issued.refused else "narrowed"
            found["C11"] = (HELD, f"the AS {how} the request for {' '.join(system_wild)}")
        else:
            found["C11"] = (VIOLATED, f"the AS grants {' '.join(system_wild)} to an operational AI")
    return found


def _probe_verdict(
    control: str,
    results: list[StepResult],
    config: Mapping[str, tuple[str, str]],
    my_patient: str | None,
) -> tuple[str, str]:
    for r in results:
        label = f"{r.step}: {r.method} {r.url} → {r.status}"
        if r.refused:
            if r.control and r.control != control and config.get(r.control, (HELD,))[0] == VIOLATED:
                return VIOLATED, f"{label}, authorized by the token, caught by {r.control}"
            continue
        if not r.ok:
            continue
        foreign = sorted(p for p in r.patients if p != my_patient)
        if foreign:
            return VIOLATED, f"{label}, reached {len(foreign)} other patient(s)"
        if control not in NARROWING:
            return VIOLATED, f"{label}, allowed"
    refusals = ", ".join(
        f"{r.step} → {r.status}{f' [{r.control}]' if r.control else ''}" for r in results
    )
    return HELD, f"refused: {refusals}" if refusals else "no request was made"


def _session_verdict(end: SessionEndResult, revoke_asked: bool) -> tuple[str, str] | None:
    if end.replay_accepted:
        return VIOLATED, f"access token accepted after the session end (HTTP {end.replay_status})"
    if end.refresh_succeeded:
        return VIOLATED, "refresh succeeded after the session end"
    if not revoke_asked:
        return VIOLATED, "tokens not revoked at the session end"
    if end.replay_attempted and end.replay_accepted_at_once:
        return HELD, (
            f"revoked token accepted at once (introspection cache), refused "
            f"{end.replay_delay_s} s after the session end"
        )
    if end.replay_attempted:
        by = f" [{end.replay_control}]" if end.replay_control else ""
        return HELD, f"post-session replay refused (HTTP {end.replay_status}{by})"
    if end.refresh_attempted:
        return HELD, "post-session refresh refused"
    return None


def _c06(evidence: AuditEvidence, anomalous: list[str]) -> tuple[str, str] | None:
    sent = evidence.sent
    if sent == 0:
        return None
    if not evidence.audited:
        return VIOLATED, f"the gateway keeps no audit trail: {sent} request(s) unrecorded"
    if evidence.recorded < sent:
        missing = sent - evidence.recorded
        return VIOLATED, f"{missing} of {sent} request(s) left no audit record"
    if evidence.alerts:
        detectors = ", ".join(dict.fromkeys(evidence.alerts))
        return VIOLATED, f"anomalous behaviour detected: alerts {detectors}"
    if anomalous:
        return VIOLATED, f"anomalous behaviour sent ({', '.join(anomalous)}) and no alert raised"
    return HELD, f"{sent} request(s), {evidence.recorded} audit record(s), no alert"


def judge(
    facts: ProfileFacts,
    steps: Iterable[StepResult],
    *,
    thresholds: Thresholds,
    trail: AuditEvidence | None,
    scope_probe: ScopeProbe | None,
    session_end: SessionEndResult,
    revoke_asked: bool,
    session_end_exercised: bool,
    my_patient: str | None,
    unsent_probes: Iterable[str] = (),
    anomalous: Iterable[str] = (),
    issued: IssuedFacts | None = None,
) -> dict[str, tuple[str, str]]:
    """Control → (verdict, evidence) for the whole run."""
    steps = list(steps)
    config = audit(facts, thresholds, issued)
    verdicts: dict[str, tuple[str, str]] = {c: (NA, "not exercised") for c in CONTROL_IDS}
    verdicts.update(config)
    recorded = _c06(trail, list(anomalous)) if trail is not None else None
    if recorded is not None:
        verdicts["C06"] = recorded
    if my_patient is not None:
        for r in steps:
            foreign = sorted(p for p in r.patients if p != my_patient)
            if r.ok and foreign:
                verdicts["C08"] = (VIOLATED, f"{r.step}: reached {len(foreign)} other patient(s)")
                break
    probed = sorted({c for r in steps for c in r.probes})
    for control in probed:
        if verdicts[control][0] == VIOLATED:
            continue
        verdict = _probe_verdict(
            control, [r for r in steps if control in r.probes], config, my_patient
        )
        verdicts[control] = verdict
    for control in unsent_probes:
        if verdicts[control][0] != VIOLATED:
            verdicts[control] = (HELD, "the AS refused the token: the probing step never ran")
    if scope_probe is not None:
        held = scope_probe.outcome != "granted"
        verdicts["C11"] = (
            HELD if held else VIOLATED,
            f"AS {scope_probe.outcome} "
            f"{' '.join(scope_probe.requested)}"
            + (f" ({scope_probe.error})" if scope_probe.error else ""),
        )
    if session_end_exercised:
        ended = _session_verdict(session_end, revoke_asked)
        if ended is not None:
            verdicts["C09"] = ended
    return verdicts


def compare(
    expect: Mapping[str, str], verdicts: Mapping[str, tuple[str, str]]
) -> list[ExpectationResult]:
    """One result per expected control (controls not listed are n/a and not compared)."""
    out: list[ExpectationResult] = []
    for control in sorted(expect):
        expected = str(expect[control])
        actual, evidence = verdicts.get(control, (NA, "not exercised"))
        out.append(ExpectationResult(control, expected, actual, actual == expected, evidence))
    return out


def caught(steps: Iterable[StepResult]) -> list[str]:
    """Controls that refused something in the run."""
    return sorted({r.control for r in steps if r.refused and r.control})

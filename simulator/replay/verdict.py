"""Verdicts per control (pure): the configuration audit of the client, then the run's evidence.

Rules (docs/scenarios.md "Verdicts"): a control is **violated** when the registration breaks it
or the granted token lets a probing step through; **held** when the registration complies and
every probing step was refused (by the AS or by a control that itself holds); **n/a** when
the run does not exercise it. A probe refused by a control the audit finds violated was
authorized by the token and only *caught*: that counts against the probed control. C06 is
violated by anomalous behaviour actually sent (bursts, paging walks: what the detectors are for);
C09 by an old access token accepted after the session end (once the gateway's introspection
cache has expired) or a refresh that still works.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from simulator.replay.model import ExpectationResult, ScopeProbe, SessionEndResult, StepResult

CONTROL_IDS = tuple(f"C{n:02d}" for n in range(1, 13))
HELD, VIOLATED, NA = "held", "violated", "n/a"
MAX_LIFETIME_S = 900
NARROWING = frozenset({"C08", "C10"})  # a narrowed 2xx within the patient's data is compliant


@dataclass(frozen=True, slots=True)
class ProfileFacts:
    """What the configuration audit needs from a client profile."""

    client_class: str
    scopes: tuple[str, ...]
    access_token_lifetime_s: int
    public: bool
    tenants: tuple[str, ...]

    @property
    def operational_ai(self) -> bool:
        return self.client_class == "operational-ai"


def _context(scope: str) -> str:
    return scope.split("/", 1)[0] if "/" in scope else ""


def _is_wildcard(scope: str) -> bool:
    return "/" in scope and scope.split("/", 1)[1].startswith("*")


def audit(facts: ProfileFacts) -> dict[str, tuple[str, str]]:
    """Control → (verdict, evidence) from the registration alone."""
    found: dict[str, tuple[str, str]] = {}
    wide = [s for s in facts.scopes if _context(s) in ("system", "user")]
    system = [s for s in facts.scopes if _context(s) == "system"]
    wildcards = [s for s in facts.scopes if _is_wildcard(s)]
    ai = facts.operational_ai

    def put(control: str, bad: bool, why_bad: str, why_ok: str) -> None:
        found[control] = (VIOLATED, why_bad) if bad else (HELD, why_ok)

    put(
        "C01",
        ai and bool(wide),
        f"operational AI registered {' '.join(wide)}",
        "patient-level scopes only" if ai else "not an operational AI client",
    )
    lifetime = facts.access_token_lifetime_s
    put(
        "C02",
        lifetime > MAX_LIFETIME_S,
        f"access token lifetime {lifetime} s > 900 s",
        f"access token lifetime {lifetime} s",
    )
    put(
        "C03",
        ai and "offline_access" in facts.scopes,
        "offline_access registered for an operational AI",
        "no offline_access for operational AI",
    )
    put(
        "C04",
        ai and bool(system),
        f"operational AI can ask {' '.join(system)} (bulk export)",
        "no system scopes for operational AI",
    )
    put(
        "C05",
        ai and bool(wildcards),
        f"wildcard scopes {' '.join(wildcards)}",
        "resource-specific scopes",
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
    system_wild = [s for s in system if _is_wildcard(s)]
    if ai and system_wild:
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


def judge(
    facts: ProfileFacts,
    steps: Iterable[StepResult],
    *,
    scope_probe: ScopeProbe | None,
    session_end: SessionEndResult,
    revoke_asked: bool,
    session_end_exercised: bool,
    my_patient: str | None,
    unsent_probes: Iterable[str] = (),
    anomalous: Iterable[str] = (),
) -> dict[str, tuple[str, str]]:
    """Control → (verdict, evidence) for the whole run."""
    steps = list(steps)
    config = audit(facts)
    verdicts: dict[str, tuple[str, str]] = {c: (NA, "not exercised") for c in CONTROL_IDS}
    verdicts.update(config)
    if steps:
        verdicts["C06"] = (HELD, f"{len(steps)} requests through the audited gateway")
    odd = list(anomalous)
    if odd:
        verdicts["C06"] = (VIOLATED, f"anomalous behaviour sent: {', '.join(odd)}")
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

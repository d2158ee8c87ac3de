"""Run one scenario once, in order, against the gateway: the functional replay.

The steps are interpreted by `simulator.steps` (shared with the load run); this module gets the
token, sends the interpreter's requests with httpx, ends the session and judges the run.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from gateway.controls import Mode
from labcore.config import LabConfig
from labcore.profiles import ClientProfile, lab_profiles
from simulator.replay.alerts import AlertWatch
from simulator.replay.credentials import obtain
from simulator.replay.exposure import exposure_window
from simulator.replay.model import ScenarioRun, SessionEndResult
from simulator.replay.target import GatewayTarget, lab_target
from simulator.replay.verdict import (
    AuditEvidence,
    IssuedFacts,
    ProfileFacts,
    Thresholds,
    caught,
    compare,
    judge,
)
from simulator.scenarios import Bindings, BurstStep, PageWalkStep, Scenario
from simulator.scenarios.vocabulary import Launch
from simulator.smart.errors import SmartError
from simulator.smart.tokens import Token, jwt_claims
from simulator.steps import Reply, Session, StepRequest, Transport, perform
from simulator.steps.interpreter import exchange

MAX_CACHE_WAIT_S = 31.0


def http_transport(http: httpx.Client) -> Transport:
    """The replay's transport: each request sent with httpx, timed, a transport error kept."""

    def send(request: StepRequest) -> Reply:
        started = time.perf_counter()
        try:
            resp = http.request(
                request.method, request.url, headers=dict(request.headers), content=request.content
            )
        except httpx.HTTPError as exc:
            ms = (time.perf_counter() - started) * 1000
            return Reply(None, elapsed_ms=ms, error=f"{type(exc).__name__}: {exc}")
        ms = (time.perf_counter() - started) * 1000
        return Reply(resp.status_code, resp.headers, resp.content, ms)

    return send


# ---- session end --------------------------------------------------------------------------
def _end_session(
    s: Session, send: Transport, ttl_s: float, scenario: Scenario, b: Bindings
) -> SessionEndResult:
    end = scenario.session_end
    client, token = s.smart, s.token
    if client is None or token is None:
        return SessionEndResult()
    revoked = False
    if end.revoke:
        try:
            client.revoke(token.access_token, "access_token")
            if s.refresh_token:
                client.revoke(s.refresh_token, "refresh_token")
            revoked = True
        except SmartError:
            revoked = False
    replay: dict[str, Any] = {}
    if end.replay_access_token:
        replay = _replay_old_token(s, send, ttl_s, token, b, revoked)
    refresh: dict[str, Any] = {}
    if end.keep_refresh_token:
        refresh = {"refresh_attempted": True, "refresh_succeeded": False}
        if s.refresh_token:
            try:
                client.refresh(s.refresh_token)
                refresh["refresh_succeeded"] = True
            except SmartError as exc:
                refresh["refresh_error"] = exc.error
        else:
            refresh["refresh_error"] = "no refresh token"
    return SessionEndResult(revoked=revoked, **replay, **refresh)


def _replay_old_token(
    s: Session, send: Transport, ttl_s: float, token: Token, b: Bindings, revoked: bool
) -> dict[str, Any]:
    """Replay the old access token at once and, if accepted after a revocation, again once the
    gateway's introspection cache (`ttl_s`) has expired (the decisive answer)."""
    ended = time.monotonic()
    url = f"Patient/{b.my_patient}"
    old = token.access_token
    first = exchange(s, s.request("post-session replay", (), "GET", url, token=old), send)
    result, delay = first, 0.0
    if first.ok and revoked and ttl_s > 0:
        time.sleep(min(ttl_s + 1.0, MAX_CACHE_WAIT_S))
        delay = time.monotonic() - ended
        again = s.request("post-session replay (cache expired)", (), "GET", url, token=old)
        result = exchange(s, again, send)
    return {
        "replay_attempted": True,
        "replay_accepted": result.ok,
        "replay_status": result.status,
        "replay_control": result.control,
        "replay_accepted_at_once": first.ok,
        "replay_delay_s": round(delay, 2),
    }


def _facts(profile: ClientProfile) -> ProfileFacts:
    return ProfileFacts(
        str(profile.client_class),
        profile.scopes,
        profile.access_token_lifetime_s,
        profile.public,
        profile.tenants,
    )


def replay(
    cfg: LabConfig,
    scenario: Scenario,
    bindings: Bindings,
    http: httpx.Client,
    profile: ClientProfile | None = None,
    *,
    target: GatewayTarget | None = None,
) -> ScenarioRun:
    """Run `scenario` once against a gateway (default: the lab's own) and judge it."""
    started = time.monotonic()
    target = target or lab_target(cfg)
    watch = AlertWatch(target.audit_dir) if target.audited and target.audit_dir else None
    if watch is not None:
        watch.start()
    profile = profile or lab_profiles(cfg.repo, cfg.clients_dir)[scenario.client]
    tenant = scenario.tenant or profile.tenants[0]
    run = ScenarioRun(
        scenario.name,
        str(scenario.kind),
        scenario.client,
        tenant,
        str(scenario.launch),
        bindings.as_dict(),
        gateway=target.name,
    )
    creds = obtain(cfg, scenario, profile, tenant, bindings, http)
    try:
        run.scope_probe, run.auth_error = creds.probe, creds.error
        session = Session(
            target.base_url,
            bindings,
            token=creds.token,
            refresh_token=creds.token.refresh_token if creds.token else None,
            smart=creds.client,
            policy=target.policy,
            bases=(target.base_url, cfg.gateway_base_url, cfg.hapi_base_url),
        )
        send = http_transport(http)
        if creds.token is not None:
            run.token = _token_facts(creds.token)
        unsent: set[str] = set()
        if creds.token is None and scenario.launch is not Launch.NONE:
            unsent = {c for step in scenario.steps for c in step.probes}
        else:
            for step in scenario.steps:
                run.steps.extend(perform(step, session, send))
        ttl_s = target.introspection_ttl_s
        run.session_end = _end_session(session, send, ttl_s, scenario, bindings)
        first = creds.token
        run.exposure = exposure_window(
            access_lifetime_s=first.lifetime_s if first else None,
            replay_accepted=run.session_end.replay_accepted,
            refresh_succeeded=run.session_end.refresh_succeeded,
            refresh_claims=jwt_claims(session.refresh_token) if session.refresh_token else None,
            now=time.time(),
            cached_s=_cached_window(run.session_end),
        )
    finally:
        creds.close()
    patient = bindings.my_patient if scenario.launch in (Launch.STANDALONE, Launch.EHR) else None
    end = scenario.session_end
    odd_steps = _anomalous(scenario)
    anomalous = sorted({r.step for r in run.steps if r.step in odd_steps})
    verdicts = judge(
        _facts(profile),
        run.steps,
        thresholds=Thresholds.of(target.policy),
        trail=_trail(target, watch, scenario.client, run, bool(anomalous)),
        scope_probe=run.scope_probe,
        session_end=run.session_end,
        revoke_asked=end.revoke,
        session_end_exercised=creds.token is not None
        and (end.replay_access_token or end.keep_refresh_token or not end.revoke),
        my_patient=patient,
        unsent_probes=unsent,
        anomalous=anomalous,
        issued=_issued(creds.token, tuple(scenario.scopes), refused=creds.refused_scope),
    )
    run.verdicts = {c: v for c, (v, _) in verdicts.items()}
    run.evidence = {c: e for c, (_, e) in verdicts.items()}
    run.expectations = compare({c: str(v) for c, v in scenario.expect.items()}, verdicts)
    run.caught = caught(run.steps)
    if watch is not None:
        run.alerts = watch.raised(scenario.client, scenario.alerts)
        run.alerts_checked = True
    run.seconds = time.monotonic() - started
    return run


def _trail(
    target: GatewayTarget, watch: AlertWatch | None, client: str, run: ScenarioRun, odd: bool
) -> AuditEvidence | None:
    """What the gateway's audit trail shows of the run (C06); None when it cannot be read from
    here (a gateway that runs elsewhere)."""
    sent = sum(1 for r in run.steps if r.status is not None)
    if target.policy.mode("C06") is Mode.OFF:
        return AuditEvidence(audited=False, sent=sent, recorded=0)
    if watch is None:
        return None
    return watch.evidence(client, sent, anomalous=odd)


def _anomalous(scenario: Scenario) -> set[str]:
    """Steps whose behaviour the anomaly detectors exist for (bursts, paging walks)."""
    return {st.name for st in scenario.steps if isinstance(st, BurstStep | PageWalkStep)}


def _cached_window(end: SessionEndResult) -> float:
    if end.replay_accepted_at_once and not end.replay_accepted:
        return float(end.replay_delay_s or 0.0)
    return 0.0


def _issued(
    token: Token | None, requested: tuple[str, ...], *, refused: bool = False
) -> IssuedFacts | None:
    if token is None:  # refused for its scopes: the AS issued nothing of what was asked
        return IssuedFacts(requested, (), 0, False, refused=True) if refused else None
    granted = tuple(token.scope.split())
    return IssuedFacts(requested, granted, int(token.lifetime_s or 0), token.is_offline)


def _token_facts(token: Token) -> dict[str, Any]:
    return {
        "scope": token.scope,
        "patient": token.patient,
        "lifetime_s": token.lifetime_s,
        "refresh_token": token.has_refresh_token,
        "offline": token.is_offline,
    }

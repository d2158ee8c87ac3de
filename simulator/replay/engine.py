"""Run one scenario once, in order, against the gateway: the functional replay."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from labcore.config import LabConfig
from labcore.profiles import ClientProfile, load_profiles
from simulator.replay.alerts import AlertWatch
from simulator.replay.clock import OffHoursClock
from simulator.replay.credentials import Credentials, obtain
from simulator.replay.exposure import exposure_window
from simulator.replay.fhir import (
    ndjson_resources,
    next_link,
    patients_reached,
    refusing_control,
    resource_keys,
    resources_of,
    xml_body,
)
from simulator.replay.model import ScenarioRun, SessionEndResult, StepResult
from simulator.replay.target import GatewayTarget, lab_target
from simulator.replay.verdict import ProfileFacts, caught, compare, judge
from simulator.scenarios import (
    Bindings,
    BurstStep,
    ExportStep,
    PageWalkStep,
    RefreshStep,
    RequestStep,
    Scenario,
    resolve,
)
from simulator.scenarios.vocabulary import Launch
from simulator.smart.errors import SmartError
from simulator.smart.tokens import Token, jwt_claims

FHIR_JSON = "application/fhir+json"
EXPORT_BUDGET_S = 120.0
MAX_BURST = 1000
MAX_CACHE_WAIT_S = 31.0


class _Session:
    """The client's state during one replay: the HTTP client, the token, the results."""

    def __init__(
        self, cfg: LabConfig, http: httpx.Client, creds: Credentials, target: GatewayTarget
    ) -> None:
        self.cfg = cfg
        self.http = http
        self.creds = creds
        self.target = target
        self.token: Token | None = creds.token
        self.refresh_token = creds.token.refresh_token if creds.token else None
        self.results: list[StepResult] = []
        self.bases = (target.base_url, cfg.gateway_base_url, cfg.hapi_base_url)
        self.introspection_ttl_s = target.introspection_ttl_s

    def headers(self, token: str | None = None) -> dict[str, str]:
        headers = {"Accept": FHIR_JSON}
        value = token or (self.token.access_token if self.token else None)
        if value:
            headers["Authorization"] = f"Bearer {value}"
        return headers

    def url(self, relative: str) -> str:
        if relative.startswith(("http://", "https://")):
            return relative
        return f"{self.target.base_url.rstrip('/')}/{relative}"

    def send(
        self,
        step: str,
        probes: tuple[str, ...],
        method: str,
        url: str,
        *,
        token: str | None = None,
        extra: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> tuple[StepResult, httpx.Response | None]:
        full = self.url(url)
        started = time.perf_counter()
        try:
            resp = self.http.request(
                method, full, headers={**self.headers(token), **(extra or {})}, **kwargs
            )
        except httpx.HTTPError as exc:
            ms = (time.perf_counter() - started) * 1000
            return StepResult(
                step,
                method,
                full,
                None,
                elapsed_ms=ms,
                probes=probes,
                error=f"{type(exc).__name__}: {exc}",
            ), None
        ms = (time.perf_counter() - started) * 1000
        return describe(step, probes, method, full, resp, ms, self.bases), resp


def describe(
    step: str,
    probes: tuple[str, ...],
    method: str,
    url: str,
    resp: httpx.Response,
    elapsed_ms: float,
    bases: tuple[str, ...] = (),
) -> StepResult:
    """A StepResult from a response (JSON or NDJSON body)."""
    body: Any = None
    resources: list[Any] = []
    content_type = resp.headers.get("content-type", "")
    if "ndjson" in content_type:
        resources = ndjson_resources(resp.text)
    elif "xml" in content_type and resp.content:
        body = xml_body(resp.content)
        resources = resources_of(body) if 200 <= resp.status_code < 300 else []
    elif resp.content:
        try:
            body = resp.json()
        except ValueError:
            body = None
        resources = resources_of(body) if 200 <= resp.status_code < 300 else []
    return StepResult(
        step=step,
        method=method,
        url=url,
        status=resp.status_code,
        control=refusing_control(body),
        results=len(resources),
        patients=tuple(sorted(patients_reached(resources, bases))),
        resources=tuple(resource_keys(resources)),
        elapsed_ms=round(elapsed_ms, 1),
        probes=probes,
    )


# ---- step interpreters --------------------------------------------------------------------
def _request(s: _Session, step: RequestStep, b: Bindings) -> None:
    line = step.request_line
    kwargs: dict[str, Any] = {}
    extra: dict[str, str] = {}
    if step.body is not None:
        kwargs["json"] = resolve(step.body, b)
        extra["Content-Type"] = FHIR_JSON
    elif step.form is not None:
        kwargs["data"] = resolve(step.form, b)
    result, _ = s.send(
        step.name, step.probes, line.method, resolve(line.url, b), extra=extra, **kwargs
    )
    s.results.append(result)


def _page_walk(s: _Session, step: PageWalkStep, b: Bindings) -> None:
    url = resolve(step.request_line.url, b)
    url += ("&" if "?" in url else "?") + f"_count={step.count}"
    for _ in range(step.max_pages):
        result, resp = s.send(step.name, step.probes, "GET", url)
        s.results.append(result)
        if resp is None or not result.ok:
            return
        try:
            following = next_link(resp.json())
        except ValueError:
            return
        if not following:
            return
        url = following


def _export(s: _Session, step: ExportStep, b: Bindings) -> None:
    line = step.kickoff
    url = resolve(line.url, b)
    result, resp = s.send(step.name, step.probes, "GET", url, extra={"Prefer": "respond-async"})
    s.results.append(result)
    if resp is None or resp.status_code != 202:
        return
    status_url = resp.headers.get("content-location")
    deadline = time.monotonic() + min(EXPORT_BUDGET_S, step.poll_interval_s * step.max_polls)
    manifest: Any = None
    while status_url and time.monotonic() < deadline:
        time.sleep(step.poll_interval_s)
        result, poll = s.send(step.name, step.probes, "GET", status_url)
        if poll is None or poll.status_code != 202:
            s.results.append(result)
            if poll is not None and poll.status_code == 200:
                manifest = poll.json()
            break
    if not step.download or not isinstance(manifest, dict):
        return
    for item in manifest.get("output") or ():
        if isinstance(item, dict) and item.get("url"):
            result, _ = s.send(
                step.name,
                step.probes,
                "GET",
                str(item["url"]),
                extra={"Accept": "application/fhir+ndjson"},
            )
            s.results.append(result)


def _refresh(s: _Session, step: RefreshStep, b: Bindings) -> None:
    started = time.perf_counter()
    status, error = 200, None
    if s.creds.client is None or not s.refresh_token:
        status, error = 400, "no refresh token"
    else:
        try:
            s.token = s.creds.client.refresh(s.refresh_token)
            s.refresh_token = s.token.refresh_token or s.refresh_token
        except SmartError as exc:
            status, error = exc.status or 400, exc.error
    ms = (time.perf_counter() - started) * 1000
    s.results.append(
        StepResult(
            step.name,
            "POST",
            "token:refresh_token",
            status,
            elapsed_ms=round(ms, 1),
            probes=step.probes,
            error=error,
        )
    )


def _burst(s: _Session, step: BurstStep, b: Bindings) -> None:
    url = resolve(step.request_line.url, b)
    times = min(step.times, MAX_BURST)
    clock = OffHoursClock.for_policy(s.target.policy) if step.off_hours else None

    def one(_: int) -> StepResult:
        extra = clock.headers() if clock is not None else None
        return s.send(step.name, step.probes, "GET", url, extra=extra)[0]

    with ThreadPoolExecutor(max_workers=min(step.concurrency, 16)) as pool:
        done = list(pool.map(one, range(times)))
    s.results.extend(done)


INTERPRETERS: dict[type, Callable[[_Session, Any, Bindings], None]] = {
    RequestStep: _request,
    PageWalkStep: _page_walk,
    ExportStep: _export,
    RefreshStep: _refresh,
    BurstStep: _burst,
}


# ---- session end --------------------------------------------------------------------------
def _end_session(s: _Session, scenario: Scenario, b: Bindings) -> SessionEndResult:
    end = scenario.session_end
    client, token = s.creds.client, s.token
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
        replay = _replay_old_token(s, token, b, revoked)
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


def _replay_old_token(s: _Session, token: Token, b: Bindings, revoked: bool) -> dict[str, Any]:
    """Replay the old access token at once and, if accepted after a revocation, again once the
    gateway's introspection cache has expired (the decisive answer)."""
    ended = time.monotonic()
    url = f"Patient/{b.my_patient}"
    first, _ = s.send("post-session replay", (), "GET", url, token=token.access_token)
    result, delay = first, 0.0
    if first.ok and revoked and s.introspection_ttl_s > 0:
        time.sleep(min(s.introspection_ttl_s + 1.0, MAX_CACHE_WAIT_S))
        delay = time.monotonic() - ended
        result, _ = s.send(
            "post-session replay (cache expired)", (), "GET", url, token=token.access_token
        )
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
    profile = profile or load_profiles(cfg.repo / "keycloak" / "clients")[scenario.client]
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
        session = _Session(cfg, http, creds, target)
        if creds.token is not None:
            run.token = _token_facts(creds.token)
        unsent: set[str] = set()
        if creds.token is None and scenario.launch is not Launch.NONE:
            unsent = {c for step in scenario.steps for c in step.probes}
        else:
            for step in scenario.steps:
                INTERPRETERS[type(step)](session, step, bindings)
        run.steps = session.results
        run.session_end = _end_session(session, scenario, bindings)
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
    verdicts = judge(
        _facts(profile),
        run.steps,
        scope_probe=run.scope_probe,
        session_end=run.session_end,
        revoke_asked=end.revoke,
        session_end_exercised=creds.token is not None
        and (end.replay_access_token or end.keep_refresh_token or not end.revoke),
        my_patient=patient,
        unsent_probes=unsent,
        anomalous=sorted({r.step for r in run.steps if r.step in _anomalous(scenario)}),
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


def _anomalous(scenario: Scenario) -> set[str]:
    """Steps whose behaviour the anomaly detectors exist for (bursts, paging walks)."""
    return {st.name for st in scenario.steps if isinstance(st, BurstStep | PageWalkStep)}


def _cached_window(end: SessionEndResult) -> float:
    if end.replay_accepted_at_once and not end.replay_accepted:
        return float(end.replay_delay_s or 0.0)
    return 0.0


def _token_facts(token: Token) -> dict[str, Any]:
    return {
        "scope": token.scope,
        "patient": token.patient,
        "lifetime_s": token.lifetime_s,
        "refresh_token": token.has_refresh_token,
        "offline": token.is_offline,
    }

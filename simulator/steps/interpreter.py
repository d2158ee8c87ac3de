"""The one interpreter of scenario steps, shared by the replay and the Locust users (STYLE 4).

A step is interpreted as a *walk*: the requests it sends, one at a time, each built from the step
and the `Session` (parameters resolved, the session's token, its gateway) when it is due, and each
answer read before the next is built:

- `request`: its request, once (`body` as FHIR JSON, `form` URL-encoded);
- `page_walk`: the first page with `_count`, then each `next` link while the pages are answered
  2xx, at most `max_pages` pages;
- `burst`: its GET `times` times (at most MAX_BURST), stamped with the simulated off-hours clock
  when `off_hours` and the session knows the gateway's policy;
- `export`: the kick-off (`Prefer: respond-async`), status polls every `poll_interval_s` until
  the job is done or its budget spent, then each file of the manifest (NDJSON);
- `refresh`: the refresh token exchanged for a new access token (no FHIR request).

`perform` runs a whole step, as the replay does (each exchange recorded as a StepResult, a
burst's requests `concurrency` at once). A Locust user takes one request of a `Walk` per task
run and starts the walk again once it has ended. Drivers only send (their own transport) and
record: neither builds a request nor decides what comes next. No Locust, no HTTP library here.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Generator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from simulator.replay.clock import BusinessHoursClock, OffHoursClock
from simulator.replay.model import StepResult
from simulator.scenarios import (
    Bindings,
    BurstStep,
    ExportStep,
    PageWalkStep,
    RefreshStep,
    RequestStep,
    StepBase,
    resolve,
)
from simulator.smart.errors import SmartError
from simulator.steps.answers import next_page, record
from simulator.steps.wire import FHIR_JSON, FHIR_NDJSON, FORM, Part, Reply, StepRequest, Transport

if TYPE_CHECKING:
    from gateway.policy import Policy
    from simulator.smart.client import SmartClient
    from simulator.smart.tokens import Token

EXPORT_BUDGET_S = 120.0  # an export's polls stop after this long at most
MAX_BURST = 1000  # requests of one burst
MAX_BURST_THREADS = 16  # a burst's concurrency at most (the replay)


@dataclass
class Session:
    """One client's run state: where it sends, its parameters, its tokens (the steps are
    immutable definitions; what changes while they run lives here)."""

    base_url: str  # the gateway's FHIR base
    bindings: Bindings
    token: Token | None = None  # its access token is sent as the bearer
    refresh_token: str | None = None
    smart: SmartClient | None = None  # for `refresh` steps; None: no refresh possible
    policy: Policy | None = None  # the gateway's, for the clock's stamps; None: no stamps
    bases: tuple[str, ...] = ()  # FHIR bases of absolute patient references (the record)
    # every request not stamped otherwise is stamped into business hours (replay/clock.py)
    business: BusinessHoursClock | None = field(default=None, init=False, repr=False)

    def request(
        self,
        step: str,
        probes: tuple[str, ...],
        method: str,
        url: str,
        *,
        token: str | None = None,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
        part: Part = Part.REQUEST,
    ) -> StepRequest:
        """A request to `url` (relative to the FHIR base, or absolute) with the session's
        token (or `token`) as the bearer; `headers` added last."""
        full = url
        if not url.startswith(("http://", "https://")):
            full = f"{self.base_url.rstrip('/')}/{url}"
        sent = {"Accept": FHIR_JSON}
        bearer = token or (self.token.access_token if self.token else None)
        if bearer:
            sent["Authorization"] = f"Bearer {bearer}"
        if self.policy is not None and self.policy.clock_header:
            if self.business is None:
                self.business = BusinessHoursClock.for_policy(self.policy)
            sent.update(self.business.headers())  # an off-hours step's own stamp replaces it
        sent.update(headers or {})
        return StepRequest(step, probes, method, full, sent, content, part)


# ---- the walks: one generator per step type, sent each answer ------------------------------
Steps = Generator[StepRequest, Reply, None]


def _request(step: RequestStep, s: Session) -> Steps:
    line, b = step.request_line, s.bindings
    content, headers = None, {}
    if step.body is not None:
        body = resolve(step.body, b)
        content = json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        content, headers = content.encode(), {"Content-Type": FHIR_JSON}
    elif step.form is not None:
        content, headers = urlencode(resolve(step.form, b)).encode(), {"Content-Type": FORM}
    url = resolve(line.url, b)
    yield s.request(step.name, step.probes, line.method, url, headers=headers, content=content)


def _page_walk(step: PageWalkStep, s: Session) -> Steps:
    url = resolve(step.request_line.url, s.bindings)
    url += ("&" if "?" in url else "?") + f"_count={step.count}"
    part = Part.REQUEST
    for _ in range(step.max_pages):
        reply = yield s.request(step.name, step.probes, "GET", url, part=part)
        following = next_page(reply.content) if reply.ok else None
        if not following:
            return
        url, part = following, Part.NEXT_PAGE


def _burst(step: BurstStep, s: Session) -> Steps:
    stamp = _stamp(step, s)
    for _ in range(burst_times(step)):
        yield _burst_request(step, s, stamp)


def _export(step: ExportStep, s: Session) -> Steps:
    kickoff = resolve(step.kickoff.url, s.bindings)
    prefer = {"Prefer": "respond-async"}
    reply = yield s.request(step.name, step.probes, "GET", kickoff, headers=prefer)
    if reply.status_code != 202:
        return
    status_url = reply.header("content-location")
    deadline = time.monotonic() + min(EXPORT_BUDGET_S, step.poll_interval_s * step.max_polls)
    manifest: Any = None
    while status_url and time.monotonic() < deadline:
        time.sleep(step.poll_interval_s)
        reply = yield s.request(step.name, step.probes, "GET", status_url, part=Part.POLL)
        if reply.status_code != 202:
            manifest = reply.json() if reply.status_code == 200 else None
            break
    if not step.download or not isinstance(manifest, dict):
        return
    ndjson = {"Accept": FHIR_NDJSON}
    for item in manifest.get("output") or ():
        if isinstance(item, dict) and item.get("url"):
            url = str(item["url"])
            yield s.request(step.name, step.probes, "GET", url, headers=ndjson, part=Part.DOWNLOAD)


WALKS: dict[type[StepBase], Callable[[Any, Session], Steps]] = {
    RequestStep: _request,
    PageWalkStep: _page_walk,
    BurstStep: _burst,
    ExportStep: _export,
}


def burst_times(step: BurstStep) -> int:
    return min(step.times, MAX_BURST)


def _stamp(step: BurstStep, s: Session) -> Callable[[], dict[str, str]] | None:
    if not step.off_hours or s.policy is None:
        return None
    return OffHoursClock.for_policy(s.policy).headers


def _burst_request(
    step: BurstStep, s: Session, stamp: Callable[[], dict[str, str]] | None
) -> StepRequest:
    url = resolve(step.request_line.url, s.bindings)
    return s.request(step.name, step.probes, "GET", url, headers=stamp() if stamp else None)


class Walk:
    """One run of a step's requests, taken one at a time: `next_request` builds the next (None:
    the walk has ended), `answer` gives it the reply to the last one."""

    def __init__(self, step: StepBase, session: Session) -> None:
        walk = WALKS.get(type(step))
        if walk is None:
            raise TypeError(f"a {step.type_name} step sends no FHIR request of its own")
        self._steps = walk(step, session)
        self._reply: Reply | None = None
        self.done = False

    def next_request(self) -> StepRequest | None:
        if self.done:
            return None
        try:
            return self._steps.send(self._reply)  # type: ignore[arg-type]  # None: the first
        except StopIteration:
            self.done = True
            return None

    def answer(self, reply: Reply) -> None:
        self._reply = reply


# ---- whole steps, as the replay runs them ------------------------------------------------
def kept(request: StepRequest, reply: Reply) -> bool:
    """Whether the replay records an exchange: all but the polls of a job still running."""
    return not (request.part is Part.POLL and reply.status_code == 202)


def exchange(session: Session, request: StepRequest, send: Transport) -> StepResult:
    """Send one request and record its answer."""
    return record(request, send(request), session.bases)


def perform(step: StepBase, session: Session, send: Transport) -> list[StepResult]:
    """Run the whole step, each exchange recorded (all but the polls of an export running)."""
    if isinstance(step, RefreshStep):
        return [refresh(step, session)]
    if isinstance(step, BurstStep):
        return _burst_at_once(step, session, send)
    walk, results = Walk(step, session), []
    while (request := walk.next_request()) is not None:
        reply = send(request)
        if kept(request, reply):
            results.append(record(request, reply, session.bases))
        walk.answer(reply)
    return results


def _burst_at_once(step: BurstStep, s: Session, send: Transport) -> list[StepResult]:
    """The burst's requests `concurrency` at once (each stamped when it is sent)."""
    stamp = _stamp(step, s)

    def one(_: int) -> StepResult:
        return exchange(s, _burst_request(step, s, stamp), send)

    with ThreadPoolExecutor(max_workers=min(step.concurrency, MAX_BURST_THREADS)) as pool:
        return list(pool.map(one, range(burst_times(step))))


def refresh(step: RefreshStep, s: Session) -> StepResult:
    """Exchange the session's refresh token; the new access token is sent from then on."""
    started = time.perf_counter()
    status, error = 200, None
    if s.smart is None or not s.refresh_token:
        status, error = 400, "no refresh token"
    else:
        try:
            s.token = s.smart.refresh(s.refresh_token)
            s.refresh_token = s.token.refresh_token or s.refresh_token
        except SmartError as exc:
            status, error = exc.status or 400, exc.error
    ms = (time.perf_counter() - started) * 1000
    return StepResult(
        step.name,
        "POST",
        "token:refresh_token",
        status,
        elapsed_ms=round(ms, 1),
        probes=step.probes,
        error=error,
    )

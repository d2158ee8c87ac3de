"""The step interpreter: the requests each step type sends, built when due, and what the replay
records of their answers; the Locust user's walk sends exactly what the replay sends."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from gateway.policy import load_policy
from simulator.replay.clock import CLOCK_HEADER
from simulator.scenarios import (
    Bindings,
    BurstStep,
    ExportStep,
    PageWalkStep,
    RefreshStep,
    RequestStep,
)
from simulator.smart.errors import SmartError
from simulator.smart.tokens import Token
from simulator.steps import Part, Reply, Session, StepRequest, Walk, perform, refresh
from simulator.steps import interpreter as interpreter_module

BASE = "http://gw.test/fhir"
BINDINGS = Bindings(
    my_patient="pat-a-000000",
    other_patient="pat-a-000002",
    other_tenant_patient="pat-b-000001",
    common_family="Smith",
    my_group="grp-a",
    my_encounter="enc-a-000000-1",
)
BUNDLE = {"resourceType": "Bundle", "type": "searchset"}


def token(value: str, refresh_token: str | None = None) -> Token:
    return Token(value, "Bearer", "openid", 300, refresh_token)


def session(**kw: Any) -> Session:
    return Session(BASE, BINDINGS, token=token("tok-1"), **kw)


def json_reply(status: int, body: Any, **headers: str) -> Reply:
    return Reply(
        status, {"Content-Type": "application/fhir+json", **headers}, json.dumps(body).encode()
    )


def page(n: int, *, last: bool = False) -> Reply:
    patient = {"resourceType": "Patient", "id": f"pat-a-00000{n}"}
    links = [{"relation": "self", "url": f"{BASE}/Patient"}]
    if not last:
        links.append({"relation": "next", "url": f"{BASE}?_getpages=x&_getpagesoffset={n + 1}"})
    return json_reply(200, {**BUNDLE, "link": links, "entry": [{"resource": patient}]})


@dataclass
class FakeGateway:
    """A transport: answers each request with `answer(request, n)` and keeps what it was sent."""

    answer: Callable[[StepRequest, int], Reply] = lambda _r, _n: json_reply(200, BUNDLE)
    sent: list[StepRequest] = field(default_factory=list)

    def __call__(self, request: StepRequest) -> Reply:
        self.sent.append(request)
        return self.answer(request, len(self.sent) - 1)


def pages_then(last: int) -> Callable[[StepRequest, int], Reply]:
    return lambda _r, n: page(n, last=n >= last)


# ---- request ------------------------------------------------------------------------------
def test_a_request_step_is_one_request_with_parameters_and_token() -> None:
    gateway = FakeGateway()
    step = RequestStep(
        name="read", request="GET Observation?patient={other_patient}", probes=("C08",)
    )
    (result,) = perform(step, session(), gateway)
    (sent,) = gateway.sent
    assert (sent.method, sent.url) == ("GET", f"{BASE}/Observation?patient=pat-a-000002")
    assert sent.headers == {"Accept": "application/fhir+json", "Authorization": "Bearer tok-1"}
    assert sent.content is None and sent.part is Part.REQUEST
    assert (result.step, result.status, result.url, result.probes) == (
        "read",
        200,
        sent.url,
        ("C08",),
    )


def test_a_body_is_fhir_json_and_a_form_is_url_encoded() -> None:
    gateway = FakeGateway()
    book = RequestStep(
        name="book",
        request="POST Appointment",
        body={
            "resourceType": "Appointment",
            "participant": [{"actor": {"reference": "Patient/{my_patient}"}}],
        },
    )
    search = RequestStep(
        name="search", request="POST Condition/_search", form={"patient": "{my_patient}"}
    )
    perform(book, session(), gateway)
    perform(search, session(), gateway)
    posted, searched = gateway.sent
    assert posted.headers["Content-Type"] == "application/fhir+json"
    assert json.loads(posted.content or b"") == {
        "resourceType": "Appointment",
        "participant": [{"actor": {"reference": "Patient/pat-a-000000"}}],
    }
    assert b" " not in (posted.content or b"")  # compact, as httpx encoded it for the replay
    assert searched.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert searched.content == b"patient=pat-a-000000"


def test_no_token_no_authorization_and_an_explicit_token_wins() -> None:
    bare = Session(BASE, BINDINGS)
    assert "Authorization" not in bare.request("s", (), "GET", "Patient").headers
    old = session().request("s", (), "GET", "Patient/x", token="old")
    assert old.headers["Authorization"] == "Bearer old"
    assert session().request("s", (), "GET", "http://other/fhir/Patient").url == (
        "http://other/fhir/Patient"
    )


# ---- page walk ----------------------------------------------------------------------------
def walk_step(max_pages: int = 3) -> PageWalkStep:
    return PageWalkStep(
        type="page_walk", name="walk", request="GET Patient?name={common_family}", count=5,
        max_pages=max_pages,
    )  # fmt: skip


def test_a_page_walk_follows_next_links_up_to_max_pages() -> None:
    gateway = FakeGateway(pages_then(last=99))
    results = perform(walk_step(max_pages=3), session(), gateway)
    assert [r.url for r in gateway.sent] == [
        f"{BASE}/Patient?name=Smith&_count=5",
        f"{BASE}?_getpages=x&_getpagesoffset=1",
        f"{BASE}?_getpages=x&_getpagesoffset=2",
    ]
    assert [r.part for r in gateway.sent] == [Part.REQUEST, Part.NEXT_PAGE, Part.NEXT_PAGE]
    assert [r.patients for r in results] == [
        ("pat-a-000000",),
        ("pat-a-000001",),
        ("pat-a-000002",),
    ]


def test_a_page_walk_stops_at_the_last_page_or_a_refusal() -> None:
    assert len(perform(walk_step(max_pages=9), session(), FakeGateway(pages_then(last=1)))) == 2
    refused = FakeGateway(
        lambda _r, _n: json_reply(
            403, {"resourceType": "OperationOutcome", "issue": [{"diagnostics": "[C05] no"}]}
        )
    )
    (result,) = perform(walk_step(), session(), refused)
    assert (result.status, result.control) == (403, "C05")


def test_the_load_walk_sends_what_the_replay_sends_one_request_at_a_time() -> None:
    replayed = FakeGateway(pages_then(last=99))
    perform(walk_step(max_pages=3), session(), replayed)
    loaded = FakeGateway(pages_then(last=99))
    s = session()
    walk = Walk(walk_step(max_pages=3), s)
    while (request := walk.next_request()) is not None:
        walk.answer(loaded(request))
    assert loaded.sent == replayed.sent
    assert walk.done and walk.next_request() is None


def test_each_request_is_built_when_due_with_the_sessions_token_then() -> None:
    s = session()
    walk = Walk(walk_step(), s)
    first = walk.next_request()
    assert first is not None
    walk.answer(page(0))
    s.token = token("tok-2")  # the Locust user renewed its token between two task runs
    second = walk.next_request()
    assert second is not None and second.headers["Authorization"] == "Bearer tok-2"


# ---- burst --------------------------------------------------------------------------------
def test_a_burst_repeats_its_get_capped_and_stamped_only_with_the_policy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(interpreter_module, "MAX_BURST", 7)
    step = BurstStep(type="burst", name="burst", request="GET Patient/{my_patient}", times=50,
                     concurrency=4, off_hours=True)  # fmt: skip
    stamped = FakeGateway()
    assert len(perform(step, session(policy=load_policy()), stamped)) == 7
    assert all(CLOCK_HEADER in r.headers for r in stamped.sent)
    assert {r.url for r in stamped.sent} == {f"{BASE}/Patient/pat-a-000000"}
    walk = Walk(step, session())  # the load run: no policy, no stamp
    requests = list(iter(walk.next_request, None))
    assert len(requests) == 7 and all(CLOCK_HEADER not in r.headers for r in requests)


# ---- export -------------------------------------------------------------------------------
def test_an_export_kicks_off_polls_downloads_and_records_all_but_running_polls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(interpreter_module.time, "sleep", lambda _s: None)
    status = f"{BASE}/$export-poll-status?_jobId=1"
    manifest = {"output": [{"type": "Patient", "url": f"{BASE}/Binary/1"}, {"type": "x"}]}
    line = json.dumps({"resourceType": "Patient", "id": "pat-a-000002"}).encode()
    answers = [
        Reply(202, {"Content-Location": status}),
        Reply(202, {}),
        json_reply(200, manifest),
        Reply(200, {"Content-Type": "application/fhir+ndjson"}, line),
    ]
    gateway = FakeGateway(lambda _r, n: answers[n])
    step = ExportStep(type="export", name="export", types=("Patient",), poll_interval_s=0.01)
    results = perform(step, session(), gateway)
    kickoff, poll, done, download = gateway.sent
    assert kickoff.url == f"{BASE}/Group/grp-a/$export?_type=Patient"
    assert kickoff.headers["Prefer"] == "respond-async"
    assert (poll.url, poll.part, done.part) == (status, Part.POLL, Part.POLL)
    assert download.headers["Accept"] == "application/fhir+ndjson"
    assert download.part is Part.DOWNLOAD
    assert [r.status for r in results] == [202, 200, 200]  # the running poll is not recorded
    assert results[-1].patients == ("pat-a-000002",)


def test_an_export_refused_at_kick_off_ends_there() -> None:
    gateway = FakeGateway(lambda _r, _n: json_reply(403, {"resourceType": "OperationOutcome"}))
    results = perform(ExportStep(type="export", name="export"), session(), gateway)
    assert len(gateway.sent) == len(results) == 1 and results[0].status == 403


# ---- transport errors ---------------------------------------------------------------------
def test_a_transport_error_is_recorded_and_ends_the_walk() -> None:
    gateway = FakeGateway(lambda _r, _n: Reply(None, elapsed_ms=2.5, error="ConnectError: refused"))
    (result,) = perform(walk_step(), session(), gateway)
    assert (result.status, result.error, result.elapsed_ms) == (None, "ConnectError: refused", 2.5)
    assert result.url == f"{BASE}/Patient?name=Smith&_count=5"


# ---- refresh ------------------------------------------------------------------------------
class FakeSmart:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail

    def refresh(self, refresh_token: str) -> Token:
        if self.fail:
            raise SmartError("refresh", "invalid_grant", "revoked", status=400)
        return token(f"new-from-{refresh_token}")


def test_a_refresh_replaces_the_token_sent_from_then_on() -> None:
    s = session(smart=FakeSmart(), refresh_token="rt-1")
    result = refresh(RefreshStep(type="refresh", name="refresh"), s)
    assert (result.method, result.url, result.status) == ("POST", "token:refresh_token", 200)
    assert s.refresh_token == "rt-1"  # no new refresh token given: the old one is kept
    gateway = FakeGateway()
    perform(RequestStep(name="read", request="GET Patient/{my_patient}"), s, gateway)
    assert gateway.sent[0].headers["Authorization"] == "Bearer new-from-rt-1"


def test_a_refresh_without_refresh_token_or_refused_is_recorded_as_such() -> None:
    step = RefreshStep(type="refresh", name="refresh")
    missing = refresh(step, session())
    assert (missing.status, missing.error) == (400, "no refresh token")
    refused = perform(step, session(smart=FakeSmart(fail=True), refresh_token="rt"), FakeGateway())
    assert (refused[0].status, refused[0].error) == (400, "invalid_grant")
    with pytest.raises(TypeError, match="refresh step sends no FHIR request"):
        Walk(step, session())


# ---- the edge -----------------------------------------------------------------------------
def test_the_interpreter_loads_without_locust() -> None:
    probe = "import sys, simulator.steps; print(sorted({m.split('.')[0] for m in sys.modules}))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert "'locust'" not in out.stdout and "'gevent'" not in out.stdout

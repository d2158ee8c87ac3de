"""Judging a response under load: ok, denied by the gateway's policy, or failed."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulator.steps.answers import Outcome, classify, next_page


def outcome(diagnostics: str) -> bytes:
    issue = {"severity": "error", "code": "forbidden", "diagnostics": diagnostics}
    return json.dumps({"resourceType": "OperationOutcome", "issue": [issue]}).encode()


@pytest.mark.parametrize("status", [200, 201, 204, 302])
def test_success_statuses_are_ok(status: int) -> None:
    assert classify(status, b"{}") == (Outcome.OK, None)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 406, 429])
def test_a_refusal_naming_its_control_is_denied(status: int) -> None:
    assert classify(status, outcome("[C08] not your patient")) == (Outcome.DENIED, "C08")


def test_a_bearer_challenge_without_control_is_denied() -> None:
    headers = {"WWW-Authenticate": 'Bearer realm="fhir", error="invalid_token"'}
    assert classify(401, outcome("the token has expired"), headers) == (Outcome.DENIED, None)
    assert classify(403, b"", {"www-authenticate": "Bearer"}) == (Outcome.DENIED, None)


def test_the_rate_limiter_is_a_denial() -> None:
    assert classify(429, outcome("client x exceeds 50 requests/s")) == (Outcome.DENIED, None)


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (None, None),
        (0, None),
        (500, outcome("[C08] looks like a refusal but is a server error")),
        (502, b""),
        (404, outcome("not found")),
        (400, outcome("HAPI: invalid parameter")),  # no control: not the gateway's policy
        (401, b"no challenge"),
    ],
)
def test_everything_else_failed(status: int | None, body: bytes | None) -> None:
    assert classify(status, body)[0] is Outcome.FAILED


@given(
    st.one_of(st.none(), st.integers(min_value=-1, max_value=999)),
    st.one_of(st.none(), st.binary(max_size=200), st.text(max_size=200)),
    st.dictionaries(st.text(max_size=20), st.text(max_size=40), max_size=3),
)
def test_any_response_gets_exactly_one_judgement(
    status: int | None, body: bytes | str | None, headers: dict[str, str]
) -> None:
    result, control = classify(status, body, headers)
    assert result in set(Outcome)
    if result is not Outcome.DENIED:
        assert control is None
    if status is None or not 200 <= status < 400:
        assert result is not Outcome.OK


def bundle(link: list[dict[str, str]], indent: int | None) -> bytes:
    body = {"resourceType": "Bundle", "type": "searchset", "link": link, "entry": []}
    return json.dumps(body, indent=indent).encode()


@pytest.mark.parametrize("indent", [None, 2])
def test_the_next_page_is_found_in_compact_and_pretty_bundles(indent: int | None) -> None:
    url = "http://127.0.0.1:41234/fhir?_getpages=abc&_getpagesoffset=20&_count=20"
    links = [{"relation": "self", "url": "http://x/fhir/Observation"}]
    assert next_page(bundle([*links, {"relation": "next", "url": url}], indent)) == url
    assert next_page(bundle([{"url": url, "relation": "next"}], indent)) == url  # keys swapped
    assert next_page(bundle(links, indent)) is None
    assert next_page(None) is None and next_page(b"") is None

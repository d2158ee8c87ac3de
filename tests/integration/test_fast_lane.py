"""The fast lane (`gateway/fastlane/`, `python -m gateway --fast-lane`) against the real stack.

Two gateway processes with the same policy (every control enforced, the rate limit off), one
with the compiled front before it: what the front serves must be what the gateway alone
answers, what it cannot vouch for must reach the gateway, every request must still be one
record of the hash-chained audit log, and a revoked token must stop working through it as
through the gateway. The bypass corpus and the fuzz run against it too
(`tests/integration/test_bypass_corpus.py`, its `corpus_gateway` fixture).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.audit.chain import verify_chain
from gateway.controls import Mode
from gateway.fast_lane import lane_binary
from labcore.config import LabConfig
from labcore.profiles import load_profiles
from simulator.smart.auth import ClientSecret
from simulator.smart.client import SmartClient
from simulator.smart.discovery import discover_issuer
from simulator.stack.extra_gateway import ExtraGateway, extra_gateway, modes_all
from tests.integration.test_gateway import ME, OTHER, TENANT_B_PATIENT, token_for

TRIAGE = "openid launch/patient patient/Patient.rs patient/Condition.rs patient/Observation.rs"
FHIR = {"Accept": "application/fhir+json"}
FRONT = "fast-lane"  # the stage name of the front's records (`gateway/fast_lane.py`)
# what HAPI writes afresh for every search (the Bundle's own id, its time, the paging ids)
VOLATILE_HEADERS = {"date", "x-request-id"}


@pytest.fixture(scope="module")
def binary() -> Path:
    return lane_binary()  # `make test` builds it: a missing one fails here, clearly


def _gateway(lab: LabConfig, directory: Path, fast: bool) -> Any:
    return extra_gateway(
        lab,
        "fast lane" if fast else "gateway alone",
        directory,
        modes_all(Mode.ENFORCE),
        rate_limit=False,
        server_args=("--fast-lane",) if fast else (),
    )


@pytest.fixture(scope="module")
def pair(
    seeded: LabConfig, binary: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ExtraGateway, ExtraGateway]]:
    root = tmp_path_factory.mktemp("fast-lane")
    with (
        _gateway(seeded, root / "alone", False) as alone,
        _gateway(seeded, root / "fast", True) as fast,
    ):
        yield alone, fast


@pytest.fixture(scope="module")
def triage(seeded: LabConfig) -> str:
    return token_for(seeded, "triage-chatbot", TRIAGE).access_token


def records(gw: ExtraGateway) -> list[dict[str, Any]]:
    assert gw.audit_dir is not None
    lines = (gw.audit_dir / "audit.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r.get("kind") == "request"]


def wait_for_records(gw: ExtraGateway, request_ids: set[str], timeout_s: float = 10) -> dict:
    """The audit records of these requests (the front's arrive in batches, shortly after)."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = {r["request_id"]: r for r in records(gw) if r["request_id"] in request_ids}
        if len(found) == len(request_ids) or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def comparable(resp: httpx.Response) -> tuple[int, dict[str, str], Any]:
    """An answer as both gateways must give it: HAPI's per-search values left out, each
    gateway's own address (in the links HAPI writes for it) written `GATEWAY`."""
    own = resp.request.url.netloc.decode()
    headers = {
        k: v.replace(own, "GATEWAY") for k, v in resp.headers.items() if k not in VOLATILE_HEADERS
    }
    body: Any = resp.content.replace(own.encode(), b"GATEWAY")
    if resp.status_code == 304:  # the relay does not pass a 304's length (RFC 9110 §8.6)
        headers.pop("content-length", None)
    if resp.headers.get("content-type", "").startswith("application/fhir+json"):
        body = json.loads(body)
        if body.get("resourceType") == "Bundle":  # made for this answer: stamped now
            headers.pop("last-modified", None)
            body.pop("id", None)
            body.pop("meta", None)
            body["link"] = [link["relation"] for link in body.get("link", [])]
        headers.pop("content-length", None)
    return resp.status_code, headers, body


def get(gw: ExtraGateway, path: str, token: str, request_id: str, **headers: str) -> httpx.Response:
    sent = {**FHIR, "Authorization": f"Bearer {token}", "X-Request-Id": request_id, **headers}
    return httpx.get(f"{gw.base_url}/{path}", headers=sent, timeout=60)


SERVED = [  # what the front answers itself for the triage token
    f"Patient/{ME}",
    f"Observation?patient={ME}&_count=5",
    f"Observation?subject=Patient/{ME}&_count=3",
    "Observation?_count=4&status=final",
    "Observation",
]
NOT_SERVED = [  # refused by the gateway, or asked in a way the front leaves to it
    (f"Patient/{OTHER}", 403),
    (f"Observation?patient={OTHER}", 403),
    (f"Patient/{TENANT_B_PATIENT}", 403),
    ("Patient?name=Smith", 200),  # Patient searches are the gateway's (pinned by _id)
    (f"Patient/{ME}?_format=json", 200),
    (f"Patient/{ME}/_history", 200),
    ("Observation?code:text=heart", 200),
    ("Observation?_include=Observation:subject", 200),
    ("Group", 403),  # no scope
]


def test_what_the_front_serves_is_what_the_gateway_answers(
    pair: tuple[ExtraGateway, ExtraGateway], triage: str
) -> None:
    alone, fast = pair
    ids = {}
    for number, path in enumerate(SERVED):
        request_id = f"served-{number}-{time.monotonic_ns()}"
        ids[request_id] = path
        expected = comparable(get(alone, path, triage, request_id))
        assert expected[0] == 200, (path, expected)
        assert comparable(get(fast, path, triage, request_id)) == expected, path
    found = wait_for_records(fast, set(ids))
    assert set(found) == set(ids)
    not_by_front = [ids[i] for i, r in found.items() if FRONT not in r["stage_ms"]]
    assert not not_by_front, f"answered by the gateway, not the front: {not_by_front}"
    for record in found.values():
        assert record["client_id"] == "triage-chatbot" and record["patient_context"] == ME
        assert record["decision"] == "allow" and record["patients"] == [ME]


def test_what_the_front_cannot_vouch_for_is_answered_by_the_gateway(
    pair: tuple[ExtraGateway, ExtraGateway], triage: str, hapi: httpx.Client
) -> None:
    alone, fast = pair
    # an Observation of another patient, by id: the front asks HAPI, sees it, and steps back
    foreign = hapi.get("Observation", params={"subject": f"Patient/{OTHER}", "_count": 1})
    other_obs = foreign.json()["entry"][0]["resource"]["id"]
    cases = [*NOT_SERVED, (f"Observation/{other_obs}", 404), ("Observation?_count=5000", 200)]
    ids = {}
    for number, (path, status) in enumerate(cases):
        request_id = f"kept-{number}-{time.monotonic_ns()}"
        ids[request_id] = path
        expected = comparable(get(alone, path, triage, request_id))
        assert expected[0] == status, (path, expected)
        assert comparable(get(fast, path, triage, request_id)) == expected, path
    # other formats and headers the front does not know
    for headers in ({"Accept": "application/fhir+xml"}, {"If-None-Match": 'W/"1"'}):
        request_id = f"kept-h-{time.monotonic_ns()}"
        ids[request_id] = str(headers)
        expected = comparable(get(alone, f"Patient/{ME}", triage, request_id, **headers))
        assert comparable(get(fast, f"Patient/{ME}", triage, request_id, **headers)) == expected
    found = wait_for_records(fast, set(ids))
    assert set(found) == set(ids)
    by_front = [ids[i] for i, r in found.items() if FRONT in r["stage_ms"]]
    assert not by_front, f"answered by the front: {by_front}"


def test_every_request_is_one_record_and_the_chain_holds_after_a_graceful_stop(
    seeded: LabConfig, binary: Path, triage: str, tmp_path: Path
) -> None:
    paths = [f"Patient/{ME}", f"Observation?patient={ME}&_count=10", f"Patient/{OTHER}", "Group"]
    sent = 0
    with _gateway(seeded, tmp_path / "gw", True) as gw:

        async def drive() -> int:
            headers = {**FHIR, "Authorization": f"Bearer {triage}"}
            async with httpx.AsyncClient(base_url=gw.base_url, headers=headers) as client:

                async def one(n: int) -> None:
                    await client.get(paths[n % len(paths)])

                await asyncio.gather(*(one(n) for n in range(400)))
            return 400

        sent = asyncio.run(drive())
    logged = records(gw)
    assert len(logged) == sent
    assert sum(FRONT in r["stage_ms"] for r in logged) >= sent // 4  # the front served its share
    assert gw.audit_dir is not None
    report = verify_chain(gw.audit_dir / "audit.jsonl")
    assert report.ok, report


def test_a_revoked_token_stops_working_through_the_front(
    seeded: LabConfig, pair: tuple[ExtraGateway, ExtraGateway]
) -> None:
    _, fast = pair
    token = token_for(seeded, "scheduling-assistant", "openid launch/patient patient/Patient.rs")
    first = get(fast, f"Patient/{ME}", token.access_token, f"revoke-1-{time.monotonic_ns()}")
    assert first.status_code == 200
    profile = load_profiles(seeded.repo / "keycloak" / "clients")["scheduling-assistant"]
    server = discover_issuer(seeded.issuer("tenant-a"))
    with SmartClient(server, ClientSecret(profile.client_id, profile.secret or "")) as client:
        client.revoke(token.access_token)
    # the gateway asks the issuer again once its introspection answer is 10 s old (the
    # policy's introspection_ttl_s); so does the front, whose grant ends with that answer
    time.sleep(11)
    later = get(fast, f"Patient/{ME}", token.access_token, f"revoke-2-{time.monotonic_ns()}")
    assert later.status_code == 401, later.text
    assert later.json()["issue"][0]["diagnostics"].startswith("[C09]")

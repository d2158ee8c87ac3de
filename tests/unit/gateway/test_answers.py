"""The checked answer path end to end in-process (`Upstream.checked`): what HAPI is asked, and
what of its answer reaches the client. The lab's policy, a fake HAPI, a fake Keycloak."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from gateway.app import create_app
from tests.unit.gateway.fuzz_harness import HAPI_BASE, Realms, lab_config

pytestmark = pytest.mark.anyio
ME, OTHER = "pat-a1", "pat-a9"
TAG = {"tag": [{"system": "https://fhirlab.dev/tenant", "code": "tenant-a"}]}
Handler = Callable[[httpx.Request], httpx.Response]


def patient(pid: str) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid, "meta": TAG}


def answering(
    body: dict[str, Any] | None, status: int = 200, **headers: str
) -> tuple[Handler, list[httpx.Request]]:
    """A fake HAPI that answers every request with `body` and records what it was asked."""
    asked: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(request)
        content = json.dumps(body).encode() if body is not None else b""
        extra = {k.replace("_", "-"): v for k, v in headers.items()}
        return httpx.Response(  # streamed, as a socket gives it
            status,
            stream=httpx.ByteStream(content),
            headers={"content-type": "application/fhir+json", **extra},
        )

    return handler, asked


async def send(
    handler: Handler, method: str, path: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    realms = Realms(["tenant-a", "tenant-b"])
    token = realms.mint(
        "tenant-a",
        {
            "azp": "scheduling-assistant",
            "client_id": "scheduling-assistant",
            "scope": "openid launch/patient patient/Patient.rs patient/Appointment.rs",
            "patient": ME,
        },
    )
    app = create_app(
        config=lab_config(None),
        transport=httpx.MockTransport(handler),
        auth_transport=httpx.MockTransport(realms.handler),
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
        return await client.request(
            method, "/fhir/" + path, headers={"Authorization": f"Bearer {token}", **(headers or {})}
        )


async def test_hapi_is_asked_for_json_with_the_gateways_headers_only() -> None:
    handler, asked = answering(patient(ME))
    forged = {
        "Accept": "text/html, application/fhir+xml;q=0.9",
        "X-Forwarded-Host": "evil.example",
        "Forwarded": "host=evil.example",
        "X-Forwarded-Prefix": "/evil",
        "If-None-Match": 'W/"1"',
        "X-Cascade": "delete",
        "Prefer": "return=representation",
    }
    resp = await send(handler, "GET", f"Patient/{ME}?_format=xml&_pretty=true", forged)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith(
        "application/fhir+xml"
    )
    assert resp.text.startswith("<?xml") and f'<id value="{ME}"/>' in resp.text
    (sent,) = asked
    assert sent.url.params.get("_format") is None and sent.url.params.get("_pretty") == "true"
    assert sent.headers["accept"] == "application/fhir+json"
    assert sent.headers["x-forwarded-host"] == "gateway.test"
    for name in ("forwarded", "x-forwarded-prefix", "if-none-match", "x-cascade"):
        assert name not in sent.headers
    assert sent.headers["prefer"] == "return=representation"


@pytest.mark.parametrize("accept", ["text/turtle", "text/html"])
async def test_a_format_not_served_is_406_and_hapi_is_not_asked(accept: str) -> None:
    handler, asked = answering(patient(ME))
    resp = await send(handler, "GET", f"Patient/{ME}", {"Accept": accept})
    assert resp.status_code == 406 and resp.json()["resourceType"] == "OperationOutcome"
    assert not asked


async def test_head_is_a_checked_get_without_a_body() -> None:
    handler, asked = answering(patient(ME))
    resp = await send(handler, "HEAD", f"Patient/{ME}")
    assert resp.status_code == 200 and resp.content == b"" and asked[0].method == "GET"
    handler, _ = answering(patient(OTHER))
    assert (await send(handler, "HEAD", "Appointment/a1")).status_code == 404


async def test_a_conditional_read_is_answered_after_the_checks() -> None:
    handler, _ = answering(patient(ME), etag='W/"3"')
    same = await send(handler, "GET", f"Patient/{ME}", {"If-None-Match": 'W/"3"'})
    assert same.status_code == 304 and same.content == b""
    newer = await send(handler, "GET", f"Patient/{ME}", {"If-None-Match": 'W/"2"'})
    assert newer.status_code == 200
    appointment = {"resourceType": "Appointment", "id": "a1", "meta": TAG, "status": "booked"}
    appointment["participant"] = [{"actor": {"reference": f"Patient/{OTHER}"}}]
    handler, _ = answering(appointment, etag='W/"3"')
    foreign = await send(handler, "GET", "Appointment/a1", {"If-None-Match": 'W/"3"'})
    assert foreign.status_code == 404 and OTHER not in foreign.text


async def test_a_server_failure_is_a_502_and_its_text_stays_behind() -> None:
    outcome = {"resourceType": "OperationOutcome", "issue": [{"diagnostics": "SQL: secret"}]}
    handler, _ = answering(outcome, status=500)
    resp = await send(handler, "GET", f"Patient/{ME}")
    assert resp.status_code == 502 and "secret" not in resp.text


async def test_locations_point_only_at_what_the_client_may_know() -> None:
    foreign = f"{HAPI_BASE}/Patient/{OTHER}/_history/1"
    handler, _ = answering(patient(ME), content_location=foreign, location=foreign)
    resp = await send(handler, "GET", f"Patient/{ME}")
    assert resp.status_code == 200 and OTHER not in str(resp.headers)
    own = f"{HAPI_BASE}/Patient/{ME}/_history/1"
    handler, _ = answering(patient(ME), content_location=own)
    assert (await send(handler, "GET", f"Patient/{ME}")).headers["content-location"] == own


async def test_a_compartment_search_is_sent_as_a_search_of_the_type() -> None:
    handler, asked = answering({"resourceType": "Bundle", "type": "searchset", "entry": []})
    resp = await send(handler, "GET", f"Patient/{ME}/Appointment?status=booked")
    assert resp.status_code == 200
    (sent,) = asked
    assert sent.url.path == "/fhir/Appointment"
    assert ("actor", f"Patient/{ME}") in sent.url.params.multi_items()  # its C08 narrowing
    assert ("status", "booked") in sent.url.params.multi_items()


async def test_a_refusal_quoting_the_clients_characters_is_a_valid_header() -> None:
    handler, asked = answering(patient(ME))
    resp = await send(handler, "GET", f"Patient?patient={OTHER}&x=%C4%80%0D%0AX-Evil:1")
    assert resp.status_code in (400, 403) and not asked
    assert "x-evil" not in resp.headers
    assert resp.json()["resourceType"] == "OperationOutcome"

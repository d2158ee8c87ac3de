"""The gateway's stages against real Keycloak tokens and real HAPI data.

Each test builds a gateway in-process (the same application `fhirlab up` runs) with the policy it
needs — one control switched off or to monitor — and talks to the session's real Keycloak and HAPI.
For every stage: a request it must allow and one it must refuse.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.app import build_audit, create_app
from gateway.audit import verify_chain
from gateway.config import GatewayConfig, load_gateway_config
from gateway.controls import Mode
from gateway.settings import GatewaySettings, TenantIssuer
from labcore.config import LabConfig
from labcore.profiles import Authenticator, load_profiles
from seed.users import DEMO_PASSWORD
from simulator.smart.auth import ClientSecret, PrivateKeyJwt, PublicClient
from simulator.smart.client import SmartClient
from simulator.smart.discovery import discover_issuer
from simulator.smart.keys import client_key
from simulator.smart.tokens import Token

pytestmark = pytest.mark.anyio
ME, OTHER = "pat-a-000000", "pat-a-000002"  # two tenant-a patients
TENANT_B_PATIENT = "pat-b-000001"
CALLBACK = "http://localhost:9999/callback"
FHIR = {"Accept": "application/fhir+json"}


@pytest.fixture(scope="module")
def base_config(seeded: LabConfig) -> GatewayConfig:
    return load_gateway_config(
        seeded.repo,
        seeded.keycloak_url,
        seeded.gateway_base_url,
        GatewaySettings(upstream=seeded.hapi_base_url),
    )


def token_for(
    lab: LabConfig, client_id: str, scope: str, user: str | None = ME, tenant: str = "tenant-a"
) -> Token:
    """A real token from Keycloak through the client's own flow."""
    profile = load_profiles(lab.repo / "keycloak" / "clients")[client_id]
    server = discover_issuer(lab.issuer(tenant))
    if profile.authenticator is Authenticator.PRIVATE_KEY_JWT:
        auth: Any = PrivateKeyJwt(client_id, client_key(lab.home, tenant, client_id))
    elif profile.authenticator is Authenticator.CLIENT_SECRET:
        auth = ClientSecret(client_id, profile.secret or "")
    else:
        auth = PublicClient(client_id)
    with SmartClient(server, auth, CALLBACK) as client:
        if "client_credentials" in profile.grant_types and user is None:
            return client.client_credentials(scope)
        assert user is not None
        return client.authorization_code(user, DEMO_PASSWORD, scope)


@asynccontextmanager
async def gateway(
    lab: LabConfig, config: GatewayConfig, audit_dir: Path | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    config = replace(config, audit_dir=audit_dir)
    audit = build_audit(config) if audit_dir else None
    app = create_app(config=config, audit=audit)
    transport = httpx.ASGITransport(app=app)
    base = lab.gateway_base_url.removesuffix("/fhir")
    try:
        async with httpx.AsyncClient(transport=transport, base_url=base, timeout=60) as client:
            yield client
    finally:
        if audit is not None:
            await audit.aclose()


def policy(config: GatewayConfig, **modes: str) -> GatewayConfig:
    return replace(config, policy=config.policy.with_modes({k: Mode(v) for k, v in modes.items()}))


def bearer(token: Token | str) -> dict[str, str]:
    value = token.access_token if isinstance(token, Token) else token
    return {**FHIR, "Authorization": f"Bearer {value}"}


def refused(resp: httpx.Response, status: int, control: str | None) -> None:
    assert resp.status_code == status, resp.text
    outcome = resp.json()
    assert outcome["resourceType"] == "OperationOutcome"
    if control:
        assert outcome["issue"][0]["diagnostics"].startswith(f"[{control}]"), outcome
    if status in (401, 403):
        assert resp.headers["www-authenticate"].startswith("Bearer ")


Scheduler = Callable[[], Token]


@pytest.fixture(scope="module")
def scheduler_token(seeded: LabConfig) -> Token:
    return token_for(
        seeded,
        "scheduling-assistant",
        "openid launch/patient patient/Patient.rs patient/Appointment.*",
    )


# ---- token ------------------------------------------------------------------------------------
async def test_no_or_bad_token_is_401(seeded: LabConfig, base_config: GatewayConfig) -> None:
    async with gateway(seeded, base_config) as gw:
        refused(await gw.get(f"/fhir/Patient/{ME}", headers=FHIR), 401, None)
        refused(await gw.get(f"/fhir/Patient/{ME}", headers=bearer("not.a.jwt")), 401, None)
        meta = await gw.get("/fhir/metadata", headers=FHIR)  # the CapabilityStatement is public
        assert meta.status_code == 200


async def test_keycloak_unreachable_fails_closed(
    seeded: LabConfig, base_config: GatewayConfig, scheduler_token: Token
) -> None:
    """A valid token, but the gateway cannot reach Keycloak's keys: refused, never forwarded."""
    async with gateway(seeded, _with_dead_keycloak(base_config)) as gw:
        resp = await gw.get(f"/fhir/Patient/{ME}", headers=bearer(scheduler_token))
    assert resp.status_code == 503, resp.text
    assert resp.json()["resourceType"] == "OperationOutcome"


class Unreachable(TenantIssuer):
    """An issuer with its real name (so tokens match) whose endpoints are a closed port."""

    @property
    def jwks_uri(self) -> str:
        return "http://127.0.0.1:1/certs"

    @property
    def introspection_endpoint(self) -> str:
        return "http://127.0.0.1:1/introspect"


def _with_dead_keycloak(config: GatewayConfig) -> GatewayConfig:
    issuers = tuple(
        Unreachable(i.tenant, i.issuer, i.client_id, i.client_secret) for i in config.issuers
    )
    return replace(config, issuers=issuers)


# ---- C01 C02 C03: client policy ----------------------------------------------------------------
async def test_c01_operational_ai_with_system_scopes(
    seeded: LabConfig, base_config: GatewayConfig
) -> None:
    broad = token_for(seeded, "broad-clinical-assistant", "system/*.read", user=None)
    analytics = token_for(seeded, "population-analytics", "system/Patient.rs", user=None)
    async with gateway(seeded, base_config) as gw:
        refused(await gw.get("/fhir/Patient", headers=bearer(broad)), 403, "C01")
        ok = await gw.get("/fhir/Patient", params={"_count": "5"}, headers=bearer(analytics))
        assert ok.status_code == 200, ok.text  # an analytics backend may hold system scopes
    async with gateway(seeded, policy(base_config, C01="monitor", C05="off")) as gw:
        monitored = await gw.get("/fhir/Patient", params={"_count": "5"}, headers=bearer(broad))
        assert monitored.status_code == 200  # recorded, not enforced


async def test_c02_long_lived_token(
    seeded: LabConfig, base_config: GatewayConfig, scheduler_token: Token
) -> None:
    long = token_for(seeded, "long-token-assistant", "openid launch/patient patient/Patient.rs")
    assert long.lifetime_s == 28800
    async with gateway(seeded, base_config) as gw:
        refused(await gw.get(f"/fhir/Patient/{ME}", headers=bearer(long)), 401, "C02")
        ok = await gw.get(f"/fhir/Patient/{ME}", headers=bearer(scheduler_token))
        assert ok.status_code == 200, ok.text


async def test_c03_offline_access(seeded: LabConfig, base_config: GatewayConfig) -> None:
    offline = token_for(
        seeded, "offline-assistant", "openid launch/patient offline_access patient/Patient.rs"
    )
    assert offline.is_offline
    async with gateway(seeded, base_config) as gw:
        refused(await gw.get(f"/fhir/Patient/{ME}", headers=bearer(offline)), 403, "C03")
    async with gateway(seeded, policy(base_config, C03="off")) as gw:
        assert (await gw.get(f"/fhir/Patient/{ME}", headers=bearer(offline))).status_code == 200


# ---- C05: scopes --------------------------------------------------------------------------------
async def test_c05_scope_and_wildcard(
    seeded: LabConfig, base_config: GatewayConfig, scheduler_token: Token
) -> None:
    wildcard = token_for(seeded, "wildcard-scheduler", "openid launch/patient patient/*.read")
    async with gateway(seeded, base_config) as gw:
        appts = await gw.get(
            "/fhir/Appointment", params={"patient": ME}, headers=bearer(scheduler_token)
        )
        assert appts.status_code == 200, appts.text
        assert appts.json().get("entry"), "the seeded patient has appointments"
        refused(
            await gw.get(
                "/fhir/Condition", params={"patient": ME}, headers=bearer(scheduler_token)
            ),
            403,
            "C05",
        )
        refused(
            await gw.get("/fhir/Condition", params={"patient": ME}, headers=bearer(wildcard)),
            403,
            "C05",
        )


# ---- C04 C12: operations ------------------------------------------------------------------------
async def test_c04_export_only_for_the_approved_backend(
    seeded: LabConfig, base_config: GatewayConfig, scheduler_token: Token
) -> None:
    analytics = token_for(
        seeded, "population-analytics", "system/Patient.rs system/Group.rs", user=None
    )
    broad = token_for(seeded, "broad-clinical-assistant", "system/*.read", user=None)
    kickoff = {"Prefer": "respond-async", "Accept": "application/fhir+json"}
    async with gateway(seeded, policy(base_config, C01="off", C05="off")) as gw:
        ok = await gw.get(
            "/fhir/Group/grp-a/$export",
            params={"_type": "Patient"},
            headers={**bearer(analytics), **kickoff},
        )
        assert ok.status_code == 202, ok.text
        job = httpx.URL(ok.headers["content-location"]).raw_path.decode()
        cancelled = await gw.delete(job, headers=bearer(analytics))
        assert cancelled.status_code == 202, cancelled.text  # HAPI's untyped answer, reworded
        assert cancelled.json()["issue"][0]["severity"] == "information"
        assert (await gw.get(job, headers=bearer(analytics))).status_code == 404
        refused(
            await gw.get("/fhir/Group/grp-a/$export", headers={**bearer(broad), **kickoff}),
            403,
            "C04",
        )
        scheduler = {**bearer(scheduler_token), **kickoff}
        refused(await gw.get("/fhir/$export", headers=scheduler), 403, "C04")


async def _export_files(gw: httpx.AsyncClient, headers: dict[str, str], **params: str) -> list[str]:
    """Kick off an export of every Patient through the gateway and wait for its files."""
    kickoff = {**headers, "Prefer": "respond-async", "Accept": "application/fhir+json"}
    query = {"_type": "Patient", **params}
    started = await gw.get("/fhir/Patient/$export", params=query, headers=kickoff)
    assert started.status_code == 202, started.text
    poll = httpx.URL(started.headers["content-location"])
    for _ in range(120):
        status = await gw.get(poll.raw_path.decode(), headers=headers)
        if status.status_code == 200:
            return [httpx.URL(o["url"]).path for o in status.json()["output"]]
        assert status.status_code == 202, status.text
        await asyncio.sleep(0.5)
    raise AssertionError("the export did not finish in 60 s")


async def _download(gw: httpx.AsyncClient, files: list[str], headers: dict[str, str]) -> list[Any]:
    lines = []
    for path in files:
        got = await gw.get(path, headers={**headers, "Accept": "application/fhir+ndjson"})
        assert got.status_code == 200, got.text
        assert got.headers["content-type"].startswith("application/fhir+ndjson")
        lines += [json.loads(line) for line in got.text.splitlines() if line.strip()]
    return lines


def _tenants(resources: list[dict[str, Any]]) -> set[str]:
    return {
        t["code"] for r in resources for t in r["meta"]["tag"] if t["system"].endswith("/tenant")
    }


async def test_c10_bulk_export_output_holds_only_the_tenants_data(
    seeded: LabConfig, base_config: GatewayConfig, tmp_path: Path
) -> None:
    """An export of every patient would hold every tenant's data. A tenant's approved backend,
    every control on, gets only its tenant's: the kick-off is bound to the tenant (`_typeFilter`),
    and a job the gateway could not bind (the client's own `_typeFilter`) has its files filtered
    line by line, the rest withheld and recorded; the audit record names the patients whose data
    went out. An export of a type the token may not read is refused at kick-off (C05)."""
    analytics = bearer(token_for(seeded, "population-analytics", "system/Patient.rs", user=None))
    every_patient = {"_typeFilter": "Patient?_lastUpdated=gt2000-01-01"}  # the client's own
    async with gateway(seeded, base_config, tmp_path / "on") as gw:
        bound = await _download(gw, await _export_files(gw, analytics), analytics)
        files = await _export_files(gw, analytics, **every_patient)
        filtered_lines = await _download(gw, files, analytics)
        # the same file asked for as a Binary resource: refused whole, it cannot be filtered;
        # a read by id, so answered as for a file that does not exist
        refused(await gw.get(files[0], headers=analytics), 404, "C10")
        kickoff = {**analytics, "Prefer": "respond-async"}
        for asked in ({"_type": "Patient,Observation"}, {}):
            refused(
                await gw.get("/fhir/Patient/$export", params=asked, headers=kickoff), 403, "C05"
            )
    assert bound and _tenants(bound) == {"tenant-a"}
    assert {r["id"] for r in filtered_lines} == {r["id"] for r in bound}
    entries = [
        json.loads(line) for line in (tmp_path / "on" / "audit.jsonl").read_text().splitlines()
    ]
    downloads = [e for e in entries if e["kind"] == "request" and "/Binary/" in e["path"]]
    decisions = [d["decision"] for d in downloads if d["status"] == 200]
    assert "allow" in decisions and "filter" in decisions  # the bound job / the other
    filtered = [d for d in downloads if d["decision"] == "filter"]
    assert all(d["control"] == "C10" for d in filtered)
    assert "withheld" in filtered[0]["reason"] and "tenant-b" in filtered[0]["reason"]
    exported = {r["id"] for r in bound}
    assert set().union(*(d["patients"] for d in downloads if d["status"] == 200)) == exported
    # with C10 off the same exports hand out the other tenant's patients too
    async with gateway(seeded, policy(base_config, C10="off")) as gw:
        everyone = await _download(gw, await _export_files(gw, analytics), analytics)
    assert _tenants(everyone) == {"tenant-a", "tenant-b"}
    assert len(everyone) > len(bound)


async def test_c12_dangerous_operations_and_count_cap(
    seeded: LabConfig, base_config: GatewayConfig
) -> None:
    analytics = token_for(seeded, "population-analytics", "system/Patient.rs", user=None)
    broad = token_for(seeded, "broad-clinical-assistant", "system/*.read", user=None)
    async with gateway(seeded, policy(base_config, C01="off", C05="off")) as gw:
        refused(await gw.get(f"/fhir/Patient/{ME}/$everything", headers=bearer(broad)), 403, "C12")
        big = await gw.get("/fhir/Patient", params={"_count": "5000"}, headers=bearer(analytics))
        assert big.status_code == 200
        assert len(big.json().get("entry", [])) <= base_config.policy.operations.max_count
        self_link = next(link["url"] for link in big.json()["link"] if link["relation"] == "self")
        assert f"_count={base_config.policy.operations.max_count}" in self_link


# ---- C09: revocation ----------------------------------------------------------------------------
async def test_c09_revoked_token(seeded: LabConfig, base_config: GatewayConfig) -> None:
    token = token_for(seeded, "scheduling-assistant", "openid launch/patient patient/Patient.rs")
    profile = load_profiles(seeded.repo / "keycloak" / "clients")["scheduling-assistant"]
    server = discover_issuer(seeded.issuer("tenant-a"))
    with SmartClient(server, ClientSecret(profile.client_id, profile.secret or "")) as client:
        client.revoke(token.access_token)
    async with gateway(seeded, policy(base_config, C09="off")) as gw:
        accepted = await gw.get(f"/fhir/Patient/{ME}", headers=bearer(token))
        # expected with local JWT checks only: a revoked token works until it expires
        assert accepted.status_code == 200
    async with gateway(seeded, base_config) as gw:
        refused(await gw.get(f"/fhir/Patient/{ME}", headers=bearer(token)), 401, "C09")


# ---- C10: tenants ------------------------------------------------------------------------------
async def test_c10_tenant_isolation(seeded: LabConfig, base_config: GatewayConfig) -> None:
    analytics = token_for(seeded, "population-analytics", "system/Patient.rs", user=None)
    async with gateway(seeded, base_config) as gw:
        # another tenant's patient by id: answered as for an id that does not exist
        refused(
            await gw.get(f"/fhir/Patient/{TENANT_B_PATIENT}", headers=bearer(analytics)), 404, "C10"
        )
        found = await gw.get("/fhir/Patient", params={"_count": "100"}, headers=bearer(analytics))
        ids = {e["resource"]["id"] for e in found.json().get("entry", [])}
        assert ME in ids and TENANT_B_PATIENT not in ids
    async with gateway(seeded, policy(base_config, C10="off")) as gw:
        leak = await gw.get(f"/fhir/Patient/{TENANT_B_PATIENT}", headers=bearer(analytics))
        assert leak.status_code == 200  # without C10 another tenant's record is returned


async def test_c10_read_before_write(
    seeded: LabConfig, base_config: GatewayConfig, scheduler_token: Token, hapi: httpx.Client
) -> None:
    """A write by id must change only the token's tenant's resources: another tenant's (or an
    untagged) stored version is refused before the write goes."""
    run = uuid.uuid4().hex[:8]
    mine, theirs, nobodys = f"c10-{run}-a", f"c10-{run}-b", f"c10-{run}-none"
    stored = {
        mine: _appointment(mine, ME),
        theirs: {**_appointment(theirs, TENANT_B_PATIENT), "meta": {"tag": [tenant_tag_b()]}},
        nobodys: {**_appointment(nobodys, ME), "meta": {}},
    }
    for rid, resource in stored.items():
        put = hapi.put(f"/Appointment/{rid}", json=resource, headers=FHIR)
        assert put.status_code in (200, 201), put.text
    me = bearer(scheduler_token)  # tenant-a
    json_patch = {**me, "Content-Type": "application/json-patch+json"}
    status = [{"op": "replace", "path": "/status", "value": "arrived"}]

    def untagged(rid: str, patient: str) -> dict[str, Any]:
        return {**_appointment(rid, patient, "cancelled"), "meta": {}}  # stamped by the gateway

    # C08 off: a patient-context token is otherwise stopped by its compartment first
    async with gateway(seeded, policy(base_config, C08="off")) as gw:
        for rid in (theirs, nobodys):
            refused(
                await gw.put(f"/fhir/Appointment/{rid}", json=untagged(rid, ME), headers=me),
                403,
                "C10",
            )
            refused(
                await gw.patch(f"/fhir/Appointment/{rid}", json=status, headers=json_patch),
                403,
                "C10",
            )
            refused(await gw.delete(f"/fhir/Appointment/{rid}", headers=me), 403, "C10")
        # a patch that would move my appointment to the other tenant
        retag = [{"op": "replace", "path": "/meta/tag/0/code", "value": "tenant-b"}]
        refused(
            await gw.patch(f"/fhir/Appointment/{mine}", json=retag, headers=json_patch), 403, "C10"
        )
        ok = await gw.put(f"/fhir/Appointment/{mine}", json=untagged(mine, ME), headers=me)
        assert ok.status_code == 200, ok.text
        patched = await gw.patch(f"/fhir/Appointment/{mine}", json=status, headers=json_patch)
        assert patched.status_code == 200, patched.text
    async with gateway(seeded, base_config) as gw:  # every control on: C10 refuses first
        refused(await gw.delete(f"/fhir/Appointment/{theirs}", headers=me), 403, "C10")
    kept = hapi.get(f"/Appointment/{theirs}", headers=FHIR).json()
    assert kept["status"] == "booked"
    assert [t["code"] for t in kept["meta"]["tag"]] == ["tenant-b"]
    assert hapi.get(f"/Appointment/{nobodys}", headers=FHIR).json()["status"] == "booked"
    assert hapi.get(f"/Appointment/{mine}", headers=FHIR).json()["status"] == "arrived"
    async with gateway(seeded, policy(base_config, C08="off", C10="off")) as gw:
        # without C10 the other tenant's appointment is overwritten: the check above stopped it
        hijack = await gw.put(f"/fhir/Appointment/{theirs}", json=untagged(theirs, ME), headers=me)
        assert hijack.status_code == 200, hijack.text


async def test_c10_and_c08_narrow_a_conditional_creates_match(
    seeded: LabConfig, base_config: GatewayConfig, scheduler_token: Token, hapi: httpx.Client
) -> None:
    """`If-None-Exist` matches only the token's tenant's (C10) and patient's (C08) resources:
    another tenant's match neither stops the create nor shows that it exists."""
    system, value = "https://fhirlab.dev/test-identifier", f"ine-{uuid.uuid4().hex[:8]}"
    theirs = {
        **_appointment(f"c10-ine-{value}", TENANT_B_PATIENT),
        "meta": {"tag": [tenant_tag_b()]},
        "identifier": [{"system": system, "value": value}],
    }
    put = hapi.put(f"/Appointment/{theirs['id']}", json=theirs, headers=FHIR)
    assert put.status_code in (200, 201), put.text
    mine = {k: v for k, v in _appointment("x", ME, "proposed").items() if k not in ("id", "meta")}
    mine["identifier"] = [{"system": system, "value": value}]
    conditional = {**bearer(scheduler_token), "If-None-Exist": f"identifier={system}|{value}"}
    # C10 off and C08 off: the other tenant's appointment matches, nothing is created (200)
    async with gateway(seeded, policy(base_config, C08="off", C10="off")) as gw:
        leak = await gw.post("/fhir/Appointment", json=mine, headers=conditional)
        assert leak.status_code == 200, leak.text
        assert theirs["id"] in leak.headers.get("location", ""), leak.headers
    # C08 alone narrows the match to the patient's compartment; C10 alone to the tenant
    for modes in ({"C10": "off"}, {"C08": "off"}):
        async with gateway(seeded, policy(base_config, **modes)) as gw:
            created = await gw.post("/fhir/Appointment", json=mine, headers=conditional)
            assert created.status_code == 201, (modes, created.text)
            assert theirs["id"] not in created.headers["location"]
            hapi.delete(created.headers["location"].split("/fhir/")[1].split("/_history")[0])
    # ... and in a transaction entry's `ifNoneExist`, every control on
    transaction = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": mine,
                "request": {
                    "method": "POST",
                    "url": "Appointment",
                    "ifNoneExist": f"identifier={system}|{value}",
                },
            }
        ],
    }
    async with gateway(seeded, base_config) as gw:
        done = await gw.post("/fhir", json=transaction, headers=bearer(scheduler_token))
    assert done.status_code == 200, done.text
    response = done.json()["entry"][0]["response"]
    assert response["status"].startswith("201"), response
    assert theirs["id"] not in response["location"]
    assert hapi.get(f"/Appointment/{theirs['id']}", headers=FHIR).json()["status"] == "booked"


async def test_c10_json_patch_entries_of_a_batch_are_checked_and_applied(
    seeded: LabConfig, base_config: GatewayConfig, scheduler_token: Token, hapi: httpx.Client
) -> None:
    """A JSON Patch in a batch travels as a Binary (base64 of the patch): the gateway decodes it
    and checks it like a PATCH request, so a harmless one goes through."""
    rid = f"c10-binpatch-{uuid.uuid4().hex[:8]}"
    put = hapi.put(f"/Appointment/{rid}", json=_appointment(rid, ME), headers=FHIR)
    assert put.status_code in (200, 201), put.text

    def batch(patch: list[dict[str, Any]]) -> dict[str, Any]:
        data = base64.b64encode(json.dumps(patch).encode()).decode()
        binary = {"resourceType": "Binary", "contentType": "application/json-patch+json"}
        return {
            "resourceType": "Bundle",
            "type": "batch",
            "entry": [
                {
                    "resource": {**binary, "data": data},
                    "request": {"method": "PATCH", "url": f"Appointment/{rid}"},
                }
            ],
        }

    me = bearer(scheduler_token)
    async with gateway(seeded, base_config) as gw:
        retag = [{"op": "replace", "path": "/meta/tag/0/code", "value": "tenant-b"}]
        refused(await gw.post("/fhir", json=batch(retag), headers=me), 403, "C10")
        arrived = [{"op": "replace", "path": "/status", "value": "arrived"}]
        done = await gw.post("/fhir", json=batch(arrived), headers=me)
    assert done.status_code == 200, done.text
    assert done.json()["entry"][0]["response"]["status"].startswith("200"), done.text
    stored = hapi.get(f"/Appointment/{rid}", headers=FHIR).json()
    assert stored["status"] == "arrived"
    assert [t["code"] for t in stored["meta"]["tag"]] == ["tenant-a"]


# ---- C06: audit ---------------------------------------------------------------------------------
async def test_c06_one_chained_audit_record_per_request(
    seeded: LabConfig, base_config: GatewayConfig, scheduler_token: Token, tmp_path: Path
) -> None:
    config = replace(
        base_config,
        policy=base_config.policy.model_copy(
            update={
                "rate_limit": base_config.policy.rate_limit.model_copy(update={"enabled": False})
            }
        ),
    )
    paths = [
        f"/fhir/Patient/{ME}",
        f"/fhir/Appointment?patient={ME}",
        "/fhir/Condition",
        f"/fhir/Patient/{OTHER}",
        "/fhir/Nonsense/../x",
    ]
    sent = 0
    async with gateway(seeded, config, audit_dir=tmp_path) as gw:

        async def one(path: str) -> None:
            await gw.get(path, headers=bearer(scheduler_token))

        batch = [paths[i % len(paths)] for i in range(200)]
        await asyncio.gather(*(one(p) for p in batch))
        sent = len(batch)
    lines = (tmp_path / "audit.jsonl").read_text().splitlines()
    requests = [json.loads(line) for line in lines if json.loads(line)["kind"] == "request"]
    assert len(requests) == sent
    report = verify_chain(tmp_path / "audit.jsonl")
    assert report.ok, report.reason
    decisions = {r["decision"] for r in requests}
    assert decisions == {"allow", "deny"}
    assert all(r["client_id"] == "scheduling-assistant" for r in requests if r["token_id"])


# ---- rate limit ---------------------------------------------------------------------------------
async def test_rate_limit(
    seeded: LabConfig, base_config: GatewayConfig, scheduler_token: Token
) -> None:
    limits = base_config.policy.rate_limit.model_copy(update={"requests_per_second": 1, "burst": 3})
    config = replace(
        base_config, policy=base_config.policy.model_copy(update={"rate_limit": limits})
    )
    async with gateway(seeded, config) as gw:
        statuses = [
            (await gw.get(f"/fhir/Patient/{ME}", headers=bearer(scheduler_token))).status_code
            for _ in range(6)
        ]
    assert statuses[:3] == [200, 200, 200]
    assert 429 in statuses[3:]


# ---- C08: the patient compartment and its side doors ------------------------------------------
@pytest.fixture(scope="module")
def chatbot_token(seeded: LabConfig) -> Token:
    return token_for(
        seeded, "triage-chatbot", "openid launch/patient patient/Patient.rs patient/Observation.rs"
    )


def patient_ids(bundle: dict[str, Any]) -> set[str]:
    from labcore.patient_compartment import compartment_patient_ids

    found: set[str] = set()
    for entry in bundle.get("entry", []):
        found |= compartment_patient_ids(entry["resource"])
    return found


async def test_c08_reads_and_searches_stay_in_the_compartment(
    seeded: LabConfig, base_config: GatewayConfig, chatbot_token: Token, scheduler_token: Token
) -> None:
    assert chatbot_token.patient == ME
    mine = bearer(chatbot_token)
    async with gateway(seeded, base_config) as gw:
        assert (await gw.get(f"/fhir/Patient/{ME}", headers=mine)).status_code == 200
        refused(await gw.get(f"/fhir/Patient/{OTHER}", headers=mine), 403, "C08")
        refused(
            await gw.get("/fhir/Observation", params={"subject": f"Patient/{OTHER}"}, headers=mine),
            403,
            "C08",
        )
        # no patient named: narrowed to mine, so nobody else's data comes back
        narrowed = await gw.get("/fhir/Observation", params={"_count": "50"}, headers=mine)
        assert narrowed.status_code == 200, narrowed.text
        assert patient_ids(narrowed.json()) == {ME}
        everyone = await gw.get("/fhir/Patient", params={"_count": "50"}, headers=mine)
        assert {e["resource"]["id"] for e in everyone.json()["entry"]} == {ME}
        # the scheduler's appointment search without a patient is narrowed the same way
        appts = await gw.get("/fhir/Appointment", headers=bearer(scheduler_token))
        assert patient_ids(appts.json()) <= {ME} and appts.json().get("entry")
    async with gateway(seeded, policy(base_config, C08="off")) as gw:
        wide = await gw.get("/fhir/Observation", params={"_count": "200"}, headers=mine)
        assert len(patient_ids(wide.json())) > 1  # without C08 the search reaches others


async def test_c08_side_doors(
    seeded: LabConfig, base_config: GatewayConfig, chatbot_token: Token
) -> None:
    mine = bearer(chatbot_token)
    async with gateway(seeded, policy(base_config, C12="off", C05="off")) as gw:
        # _revinclude from my record must not pull other patients' resources
        rev = await gw.get(
            "/fhir/Patient", params={"_id": ME, "_revinclude": "Observation:subject"}, headers=mine
        )
        assert rev.status_code == 200 and patient_ids(rev.json()) == {ME}
        refused(
            await gw.get("/fhir/Patient", params={"_revinclude": "*"}, headers=mine), 403, "C08"
        )
        # reverse chaining across the population is narrowed to me
        has = await gw.get(
            "/fhir/Patient",
            params={"_has:Observation:subject:category": "vital-signs"},
            headers=mine,
        )
        assert has.status_code == 200 and {
            e["resource"]["id"] for e in has.json().get("entry", [])
        } <= {ME}
        # POST _search form body naming another patient
        form = {**mine, "Content-Type": "application/x-www-form-urlencoded"}
        refused(
            await gw.post(
                "/fhir/Observation/_search", content=f"subject=Patient/{OTHER}", headers=form
            ),
            403,
            "C08",
        )
        # another patient's $everything
        refused(await gw.get(f"/fhir/Patient/{OTHER}/$everything", headers=mine), 403, "C08")
        # history across the type
        refused(await gw.get("/fhir/Observation/_history", headers=mine), 403, "C08")
        # a batch whose second entry reads another patient
        batch = {
            "resourceType": "Bundle",
            "type": "batch",
            "entry": [
                {"request": {"method": "GET", "url": f"Patient/{ME}"}},
                {"request": {"method": "GET", "url": f"Observation?subject=Patient/{OTHER}"}},
            ],
        }
        refused(await gw.post("/fhir", json=batch, headers=mine), 403, "C08")


# ---- C06: the lab's simulated clock (LAB ONLY) ------------------------------------------------
SATURDAY_3AM = "2026-11-28T03:00:00-05:00"  # off hours in the policy's America/New_York


def _alerts_of(path: Path, request_ids: set[str]) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    alerts = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [a for a in alerts if request_ids & set(a["evidence"].get("request_ids", []))]


def test_c06_off_hours_clock_header_raises_off_hours_alert(seeded: LabConfig) -> None:
    """The lab's own gateway (lab policy: `anomaly.clock_header: X-Fhirlab-Clock`) judges
    stamped requests at their simulated instant, whatever the real time: an off-hours burst
    alerts in the lab's audit/alerts.jsonl; the audit records keep the real time."""
    scope = "openid launch/patient patient/Patient.rs patient/Appointment.*"
    token = token_for(seeded, "scheduling-assistant", scope)  # a new token: a new timeline
    started = time.time()
    night = datetime.fromisoformat(SATURDAY_3AM).timestamp()
    sent: set[str] = set()
    with httpx.Client(base_url=seeded.gateway_base_url, timeout=60) as gw:
        bad = gw.get(
            "/Appointment",
            params={"patient": ME},
            headers={**bearer(token), "X-Fhirlab-Clock": "tonight"},
        )
        refused(bad, 400, None)
        for n in range(12):
            request_id = f"clock-{uuid.uuid4().hex[:12]}"
            stamp = datetime.fromtimestamp(night + n, UTC).isoformat()
            resp = gw.get(
                "/Appointment",
                params={"patient": ME},
                headers={**bearer(token), "X-Fhirlab-Clock": stamp, "X-Request-Id": request_id},
            )
            assert resp.status_code == 200, resp.text
            sent.add(request_id)
    audit_dir = seeded.home / "audit"
    deadline = time.monotonic() + 10
    while not (found := _alerts_of(audit_dir / "alerts.jsonl", sent)):
        assert time.monotonic() < deadline, "no alert for the simulated off-hours burst"
        time.sleep(0.2)
    assert [a["detector"] for a in found] == ["off_hours"]
    assert found[0]["evidence"]["simulated_time"].startswith("2026-11-28T08:00:1")
    assert started - 1 <= found[0]["ts"] <= time.time()  # raised now, not on the simulated night
    records = [
        json.loads(line)
        for line in (audit_dir / "audit.jsonl").read_text().splitlines()
        if json.loads(line).get("request_id") in sent
    ]
    assert len(records) == len(sent)
    assert all(night <= r["simulated_time"] < night + 12 for r in records)
    assert all(started - 1 <= r["ts"] <= time.time() for r in records)  # the real time


# ---- C08: read-before-write for updates, patches and deletes by id ----------------------------
def _appointment(rid: str, patient: str, status: str = "booked") -> dict[str, Any]:
    return {
        "resourceType": "Appointment",
        "id": rid,
        "meta": {"tag": [tenant_tag_a()]},
        "status": status,
        "participant": [{"actor": {"reference": f"Patient/{patient}"}, "status": "accepted"}],
    }


def tenant_tag_a() -> dict[str, str]:
    return {"system": "https://fhirlab.dev/tenant", "code": "tenant-a"}


def tenant_tag_b() -> dict[str, str]:
    return {"system": "https://fhirlab.dev/tenant", "code": "tenant-b"}


async def test_c08_read_before_write(
    seeded: LabConfig, base_config: GatewayConfig, scheduler_token: Token, hapi: httpx.Client
) -> None:
    run = uuid.uuid4().hex[:8]
    mine, theirs, new = f"rbw-{run}-mine", f"rbw-{run}-theirs", f"rbw-{run}-new"
    for rid, patient in ((mine, ME), (theirs, OTHER)):
        put = hapi.put(f"/Appointment/{rid}", json=_appointment(rid, patient), headers=FHIR)
        assert put.status_code in (200, 201), put.text
    me = bearer(scheduler_token)
    json_patch = {**me, "Content-Type": "application/json-patch+json"}
    status = [{"op": "replace", "path": "/status", "value": "arrived"}]
    async with gateway(seeded, base_config) as gw:
        # overwriting another patient's appointment with this patient's content: refused
        refused(
            await gw.put(f"/fhir/Appointment/{theirs}", json=_appointment(theirs, ME), headers=me),
            403,
            "C08",
        )
        refused(
            await gw.patch(f"/fhir/Appointment/{theirs}", json=status, headers=json_patch),
            403,
            "C08",
        )
        refused(await gw.delete(f"/fhir/Appointment/{theirs}", headers=me), 403, "C08")
        # a patch that would move my appointment to another patient
        move = [{"op": "replace", "path": "/participant/0/actor/reference", "value": OTHER}]
        refused(
            await gw.patch(f"/fhir/Appointment/{mine}", json=move, headers=json_patch), 403, "C08"
        )
        # my own: update, patch, delete pass; a new id is created (checked on its body)
        ok = await gw.put(
            f"/fhir/Appointment/{mine}", json=_appointment(mine, ME, "pending"), headers=me
        )
        assert ok.status_code == 200, ok.text
        created = await gw.put(f"/fhir/Appointment/{new}", json=_appointment(new, ME), headers=me)
        assert created.status_code == 201, created.text
        patched = await gw.patch(f"/fhir/Appointment/{mine}", json=status, headers=json_patch)
        assert patched.status_code == 200, patched.text
        deleted = await gw.delete(f"/fhir/Appointment/{new}", headers=me)
        assert deleted.status_code in (200, 204), deleted.text
    stored = hapi.get(f"/Appointment/{theirs}", headers=FHIR).json()
    assert stored["participant"][0]["actor"]["reference"] == f"Patient/{OTHER}"
    assert stored["status"] == "booked"
    assert hapi.get(f"/Appointment/{mine}", headers=FHIR).json()["status"] == "arrived"
    assert hapi.get(f"/Appointment/{new}", headers=FHIR).status_code == 410
    async with gateway(seeded, policy(base_config, C08="off")) as gw:
        # without C08 the overwrite goes through: the check above is what stopped it
        hijack = await gw.put(
            f"/fhir/Appointment/{theirs}", json=_appointment(theirs, ME), headers=me
        )
        assert hijack.status_code == 200, hijack.text


# ---- C08: a patient may not link its Patient record to another patient -----------------------
async def test_c08_patch_of_the_patient_must_leave_its_links_alone(
    seeded: LabConfig, base_config: GatewayConfig, scheduler_token: Token, hapi: httpx.Client
) -> None:
    before = hapi.get(f"/Patient/{ME}", headers=FHIR).json()
    json_patch = {**bearer(scheduler_token), "Content-Type": "application/json-patch+json"}
    link = {"other": {"reference": f"Patient/{OTHER}"}, "type": "seealso"}
    try:
        # C05 off: no client profile may update Patient; this test is about C08
        async with gateway(seeded, policy(base_config, C05="off")) as gw:
            refused(
                await gw.patch(
                    f"/fhir/Patient/{ME}",
                    json=[{"op": "add", "path": "/link", "value": [link]}],
                    headers=json_patch,
                ),
                403,
                "C08",
            )
            own = [{"op": "add", "path": "/active", "value": True}]
            ok = await gw.patch(f"/fhir/Patient/{ME}", json=own, headers=json_patch)
            assert ok.status_code == 200, ok.text
        after = hapi.get(f"/Patient/{ME}", headers=FHIR).json()
        assert "link" not in after and after["active"] is True
    finally:  # the lab's patient as it was, whatever happened
        restored = hapi.put(f"/Patient/{ME}", json=before, headers=FHIR)
        assert restored.status_code == 200, restored.text


# ---- C08: transactions that point at their own entries (urn:uuid) -----------------------------
async def test_c08_transaction_with_urn_uuid_references(
    seeded: LabConfig, base_config: GatewayConfig, scheduler_token: Token, hapi: httpx.Client
) -> None:
    me_now = hapi.get(f"/Patient/{ME}", headers=FHIR).json()
    patient_url, new_patient_url = f"urn:uuid:{uuid.uuid4()}", f"urn:uuid:{uuid.uuid4()}"
    marker = f"urn-{uuid.uuid4().hex[:8]}"
    appointment = {
        "resourceType": "Appointment",
        "status": "proposed",
        "description": marker,
        "participant": [{"actor": {"reference": patient_url}, "status": "needs-action"}],
    }
    mine = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": patient_url,
                "resource": me_now,
                "request": {"method": "PUT", "url": f"Patient/{ME}"},
            },
            {"resource": appointment, "request": {"method": "POST", "url": "Appointment"}},
        ],
    }
    stranger = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": new_patient_url,
                "resource": {"resourceType": "Patient", "meta": me_now["meta"]},
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "resource": {
                    **appointment,
                    "participant": [
                        {"actor": {"reference": new_patient_url}, "status": "needs-action"}
                    ],
                },
                "request": {"method": "POST", "url": "Appointment"},
            },
        ],
    }
    # C05 off: no client profile may write Patient; this test is about C08
    async with gateway(seeded, policy(base_config, C05="off")) as gw:
        refused(await gw.post("/fhir", json=stranger, headers=bearer(scheduler_token)), 403, "C08")
        ok = await gw.post("/fhir", json=mine, headers=bearer(scheduler_token))
        assert ok.status_code == 200, ok.text
    location = ok.json()["entry"][1]["response"]["location"].split("/_history")[0]
    created = hapi.get(f"/{location}", headers=FHIR).json()
    assert created["description"] == marker
    actors = [p["actor"]["reference"] for p in created["participant"]]
    assert actors == [f"Patient/{ME}"]  # HAPI resolved the urn:uuid to the patient


# ---- C10: what a transaction creates is its tenant's ------------------------------------------
async def test_c10_transaction_entries_are_stamped(
    seeded: LabConfig, base_config: GatewayConfig, scheduler_token: Token, hapi: httpx.Client
) -> None:
    marker = f"c10-tx-{uuid.uuid4().hex[:8]}"
    appointment = {
        "resourceType": "Appointment",
        "status": "proposed",
        "description": marker,
        "participant": [{"actor": {"reference": f"Patient/{ME}"}, "status": "needs-action"}],
    }
    transaction = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"resource": appointment, "request": {"method": "POST", "url": "Appointment"}}],
    }
    other_tenant = token_for(
        seeded,
        "shared-vendor",
        "openid launch/patient patient/Patient.rs patient/Observation.rs",
        user=TENANT_B_PATIENT,
        tenant="tenant-b",
    )
    async with gateway(seeded, base_config) as gw:
        done = await gw.post("/fhir", json=transaction, headers=bearer(scheduler_token))
        assert done.status_code == 200, done.text
        location = done.json()["entry"][0]["response"]["location"].split("/_history")[0]
        # visible to its tenant, by id and by search
        mine = await gw.get(f"/fhir/{location}", headers=bearer(scheduler_token))
        assert mine.status_code == 200, mine.text
        found = await gw.get(
            "/fhir/Appointment",
            params={"patient": ME, "_id": location.split("/")[1]},
            headers=bearer(scheduler_token),
        )
        assert [f"Appointment/{e['resource']['id']}" for e in found.json()["entry"]] == [location]
    # invisible to the other tenant: C05 and C08 off, so C10 alone stands in the way
    async with gateway(seeded, policy(base_config, C05="off", C08="off")) as gw:
        theirs = bearer(other_tenant)
        refused(await gw.get(f"/fhir/{location}", headers=theirs), 404, "C10")
        search = await gw.get(
            "/fhir/Appointment", params={"_id": location.split("/")[1]}, headers=theirs
        )
        assert search.status_code == 200 and not search.json().get("entry"), search.text
    stored = hapi.get(f"/{location}", headers=FHIR).json()
    assert stored["description"] == marker
    assert [(t["system"], t["code"]) for t in stored["meta"]["tag"]] == [
        ("https://fhirlab.dev/tenant", "tenant-a")
    ]


# ---- C06: FHIR AuditEvents in HAPI (policy audit.fhir_audit_events) ---------------------------
async def test_c06_fhir_audit_events_reach_hapi(
    seeded: LabConfig, base_config: GatewayConfig, hapi: httpx.Client, tmp_path: Path
) -> None:
    token = token_for(
        seeded,
        "scheduling-assistant",
        "openid launch/patient patient/Patient.rs patient/Appointment.*",
    )
    audit = base_config.policy.audit.model_copy(update={"fhir_audit_events": True})
    config = replace(base_config, policy=base_config.policy.model_copy(update={"audit": audit}))
    sent = [f"ae-{uuid.uuid4().hex[:12]}" for _ in range(6)]
    async with gateway(seeded, config, audit_dir=tmp_path) as gw:
        for n, request_id in enumerate(sent):
            path = f"/fhir/Patient/{ME if n % 3 else OTHER}"  # allowed and refused (C08)
            await gw.get(path, headers={**bearer(token), "X-Request-Id": request_id})
    # the gateway closed: its queue is flushed to HAPI
    records = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    token_id = records[0]["token_id"]
    found = hapi.get(
        "/AuditEvent", params={"policy": token_id, "_count": "50"}, headers=FHIR
    ).json()
    events = [e["resource"] for e in found.get("entry", [])]

    def request_id(event: dict[str, Any]) -> str:
        return next(
            e["what"]["identifier"]["value"]
            for e in event["entity"]
            if e["type"]["code"] == "XrequestId"
        )

    by_id = {request_id(e): e for e in events}
    assert set(by_id) == set(sent)
    assert by_id[sent[1]]["outcome"] == "0" and by_id[sent[0]]["outcome"] == "4"
    assert "deny by C08" in by_id[sent[0]]["outcomeDesc"]
    assert {"reference": f"Patient/{ME}"} in [e.get("what") for e in by_id[sent[1]]["entity"]]


# ---- the CapabilityStatement per client --------------------------------------------------------
async def test_metadata_per_client(
    seeded: LabConfig, base_config: GatewayConfig, scheduler_token: Token
) -> None:
    analytics = token_for(
        seeded, "population-analytics", "system/Patient.rs system/Group.rs", user=None
    )

    def resources(statement: dict[str, Any]) -> dict[str, dict[str, Any]]:
        return {r["type"]: r for r in statement["rest"][0]["resource"]}

    def operations(resource: dict[str, Any]) -> set[str]:
        return {o["name"] for o in resource.get("operation", [])}

    async with gateway(seeded, base_config) as gw:
        public = (await gw.get("/fhir/metadata", headers=FHIR)).json()
        xml = await gw.get("/fhir/metadata", headers={"Accept": "application/fhir+xml"})
        mine = await gw.get("/fhir/metadata", headers=bearer(scheduler_token))
        backend = (await gw.get("/fhir/metadata", headers=bearer(analytics))).json()
        refused(await gw.get("/fhir/metadata", headers=bearer("not.a.jwt")), 401, None)
    assert mine.status_code == 200 and mine.headers["content-type"].startswith(
        "application/fhir+json"
    )
    assert len(resources(public)) > 100 and "export" in operations(resources(public)["Group"])
    scheduler = resources(mine.json())
    assert set(scheduler) == {"Patient", "Appointment"}
    codes = {i["code"] for i in scheduler["Patient"]["interaction"]}
    assert "read" in codes and "search-type" in codes and not codes & {"update", "delete"}
    assert not operations(scheduler["Patient"]) & {"export", "everything"}
    assert "export" not in {o["name"] for o in mine.json()["rest"][0].get("operation", [])}
    assert set(resources(backend)) == {"Patient", "Group"}
    assert "export" in operations(resources(backend)["Group"])
    # the links in them name the gateway, not HAPI: the filtered ones and the public one
    assert seeded.hapi_base_url not in json.dumps(mine.json())
    assert seeded.hapi_base_url not in json.dumps(public)
    assert public["implementation"]["url"] == seeded.gateway_base_url
    definitions = [o.get("definition", "") for o in public["rest"][0]["operation"]]
    assert any(d.startswith(f"{seeded.gateway_base_url}/OperationDefinition/") for d in definitions)
    assert seeded.hapi_base_url not in xml.text and seeded.gateway_base_url in xml.text
    assert xml.headers["content-type"].startswith("application/fhir+xml")

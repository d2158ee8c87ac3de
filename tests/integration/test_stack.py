"""The real servers answer as the lab needs: HAPI (direct and through the gateway), Keycloak."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import httpx
import pytest

from labcore.config import LabConfig
from labcore.errors import LabError
from labcore.keycloak_admin import KeycloakAdmin
from simulator.stack import lab as stack
from tests.integration.conftest import tenant_tag

FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}


def operations(capability: dict[str, Any]) -> dict[str, set[str]]:
    """Operation names by level: 'system' and each resource type."""
    rest = capability["rest"][0]
    ops = {"system": {op["name"] for op in rest.get("operation", [])}}
    for res in rest.get("resource", []):
        ops[res["type"]] = {op["name"] for op in res.get("operation", [])}
    return ops


def test_status_reports_all_services_running(lab: LabConfig) -> None:
    states = {s.name: s for s in stack.status(lab)}
    assert {name: s.state for name, s in states.items()} == {
        "keycloak": "running",
        "hapi": "running",
        "gateway": "running",
    }
    assert all(s.rss_mb and s.rss_mb > 10 for s in states.values())


@pytest.mark.parametrize("client_name", ["hapi", "gateway"])
def test_capability_statement_is_r4_with_export_and_everything(
    client_name: str, request: pytest.FixtureRequest
) -> None:
    client: httpx.Client = request.getfixturevalue(client_name)
    resp = client.get("/metadata", headers=FHIR_JSON)
    assert resp.status_code == 200
    capability = resp.json()
    assert capability["resourceType"] == "CapabilityStatement"
    assert capability["fhirVersion"] == "4.0.1"
    ops = operations(capability)
    assert "export" in ops["system"]
    assert "export" in ops["Patient"] and "everything" in ops["Patient"]
    assert "export" in ops["Group"]


def test_patient_round_trip(
    hapi: httpx.Client, gateway: httpx.Client, analytics_token: str
) -> None:
    """Written to HAPI directly, read back and found by search through the gateway."""
    pid = f"itest-{uuid.uuid4().hex[:12]}"
    family = f"Zz{uuid.uuid4().hex[:8]}"
    patient = {
        "resourceType": "Patient",
        "id": pid,
        "meta": {"tag": [tenant_tag("tenant-a")]},
        "name": [{"family": family, "given": ["Ada"]}],
    }
    put = hapi.put(f"/Patient/{pid}", json=patient, headers=FHIR_JSON)
    assert put.status_code in (200, 201), put.text
    auth = {**FHIR_JSON, "Authorization": f"Bearer {analytics_token}"}
    read = gateway.get(f"/Patient/{pid}", headers=auth)
    assert read.status_code == 200, read.text
    assert read.json()["name"][0]["family"] == family
    found = gateway.get("/Patient", params={"family": family}, headers=auth).json()
    assert len(found.get("entry", [])) == 1
    assert found["entry"][0]["resource"]["id"] == pid
    assert gateway.get(f"/Patient/{pid}", headers=FHIR_JSON).status_code == 401


def test_group_export_completes_and_ndjson_downloads(
    lab: LabConfig, hapi: httpx.Client, gateway: httpx.Client, analytics_token: str
) -> None:
    tag = uuid.uuid4().hex[:10]
    members = [f"exp-{tag}-{i}" for i in range(3)]
    meta = {"tag": [tenant_tag("tenant-a")]}
    entries = [
        {
            "resource": {
                "resourceType": "Patient",
                "id": pid,
                "meta": meta,
                "name": [{"family": f"Exp{tag}"}],
            },
            "request": {"method": "PUT", "url": f"Patient/{pid}"},
        }
        for pid in members
    ]
    group = {
        "resourceType": "Group",
        "id": f"grp-{tag}",
        "meta": meta,
        "type": "person",
        "actual": True,
        "member": [{"entity": {"reference": f"Patient/{pid}"}} for pid in members],
    }
    entries.append({"resource": group, "request": {"method": "PUT", "url": f"Group/grp-{tag}"}})
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    assert hapi.post("", json=bundle, headers=FHIR_JSON).status_code == 200

    auth = {"Authorization": f"Bearer {analytics_token}"}
    kickoff = gateway.get(
        f"/Group/grp-{tag}/$export",
        params={"_type": "Patient"},
        headers={**auth, "Accept": "application/fhir+json", "Prefer": "respond-async"},
    )
    assert kickoff.status_code == 202, kickoff.text
    status_url = kickoff.headers["Content-Location"]
    assert status_url.startswith(lab.gateway_base_url), "HAPI must link to the gateway"

    deadline = time.monotonic() + 300
    while True:
        poll = gateway.get(status_url, headers={**auth, "Accept": "application/json"})
        if poll.status_code == 200:
            break
        assert poll.status_code == 202, poll.text
        assert time.monotonic() < deadline, "export did not finish in 300 s"
        time.sleep(2)
    manifest = poll.json()
    outputs = [o for o in manifest["output"] if o["type"] == "Patient"]
    assert outputs
    exported = set()
    for output in outputs:
        assert output["url"].startswith(lab.gateway_base_url)
        ndjson = gateway.get(output["url"], headers={**auth, "Accept": "application/fhir+ndjson"})
        assert ndjson.status_code == 200
        for line in ndjson.text.splitlines():
            if line.strip():
                exported.add(json.loads(line)["id"])
    assert exported == set(members)


def test_keycloak_realm_discovery(lab: LabConfig) -> None:
    issuer = lab.issuer("tenant-a")
    resp = httpx.get(f"{issuer}/.well-known/openid-configuration", timeout=30)
    assert resp.status_code == 200
    config = resp.json()
    assert config["issuer"] == issuer
    assert config["token_endpoint"].startswith(lab.keycloak_url)
    assert "revocation_endpoint" in config and "introspection_endpoint" in config


def test_admin_token_and_admin_api(lab: LabConfig) -> None:
    with KeycloakAdmin(lab.keycloak_url, lab.admin_user, lab.admin_password) as admin:
        assert admin.token().count(".") == 2  # a JWT
        assert admin.realm_exists("tenant-a")
        assert not admin.realm_exists("no-such-realm")


def test_wrong_admin_password_is_one_clear_error(lab: LabConfig) -> None:
    with (
        KeycloakAdmin(lab.keycloak_url, lab.admin_user, "wrong") as admin,
        pytest.raises(LabError) as caught,
    ):
        admin.token()
    assert "admin login" in caught.value.message and "401" in caught.value.message

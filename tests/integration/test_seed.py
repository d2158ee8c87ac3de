"""`fhirlab seed` against the real stack: HAPI holds exactly the generated data, Keycloak the users.

The population is small (20 patients, seed 7, two tenants). HAPI may hold other test data, so
every check names this population's ids: per-patient searches, ``_id`` counts per type, the
tenant Group's export. Seeding runs twice (first through the CLI, then through ``seed_lab``) and
the second run must change nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from labcore.config import LabConfig
from labcore.keycloak_admin import KeycloakAdmin
from seed import Population, PopulationOptions, generate_population
from seed.counts import SEEDED_TYPES
from seed.lab import SeedReport, read_seed_record, seed_lab
from seed.users import DEMO_PASSWORD
from simulator.authserver.provision import provision_tenants
from tests.integration.conftest import lab_env

OPTIONS = PopulationOptions(patients=20, seed=7, tenants=2)
SHARE = 0.5  # patients 0..9 get a login
FHIR = {"Accept": "application/fhir+json", "Cache-Control": "no-cache"}


@pytest.fixture(scope="module")
def population() -> Population:
    return generate_population(OPTIONS)


@pytest.fixture(scope="module")
def first_run(lab: LabConfig, population: Population) -> subprocess.CompletedProcess[str]:
    # What `fhirlab up` does, idempotent: completes the tenant realms (user profile included)
    # also on a test stack that was started before the realm provisioning existed.
    provision_tenants(lab)
    args = ["--patients", "20", "--seed", "7", "--tenants", "2", "--users", str(SHARE)]
    return subprocess.run(
        [sys.executable, "-m", "simulator", "seed", *args],
        env=lab_env(lab), capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def hapi_direct(lab: LabConfig) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=lab.hapi_base_url, timeout=60, headers=FHIR) as client:
        yield client


def total(client: httpx.Client, path: str, **params: str) -> int:
    resp = client.get(path, params={**params, "_summary": "count"})
    assert resp.status_code == 200, resp.text
    return int(resp.json()["total"])


def versions(client: httpx.Client, refs: list[str]) -> dict[str, str]:
    out = {}
    for ref in refs:
        resp = client.get(f"/{ref}")
        assert resp.status_code == 200, (ref, resp.text)
        out[ref] = resp.json()["meta"]["versionId"]
    return out


def sample_refs(population: Population) -> list[str]:
    record = population.record(3)
    picked = [r for r in record.resources if r["resourceType"] in ("Patient", "Observation")][:3]
    return [
        *(f"{r['resourceType']}/{r['id']}" for r in picked),
        "Practitioner/prac-a-000",
        "Group/grp-a",
        "Group/grp-b",
    ]


def test_cli_seeds_and_records_what_it_did(
    lab: LabConfig, first_run: subprocess.CompletedProcess[str]
) -> None:
    assert first_run.returncode == 0, first_run.stderr
    assert "resources loaded" in first_run.stdout
    record = read_seed_record(lab)
    assert record is not None
    assert record["options"] == OPTIONS.to_dict()
    assert record["load"]["patients"] == 20
    assert record["summary"]["total_resources"] == record["load"]["resources"]
    assert record["users"]["patient_users"] == 10


def ids_of(client: httpx.Client, path: str, **params: str) -> set[str]:
    resp = client.get(path, params={**params, "_elements": "id", "_count": "1000"})
    assert resp.status_code == 200, resp.text
    bundle = resp.json()
    assert not any(link["relation"] == "next" for link in bundle.get("link", [])), "one page"
    return {entry["resource"]["id"] for entry in bundle.get("entry", [])}


def test_each_patient_has_exactly_its_generated_resources(
    first_run: subprocess.CompletedProcess[str], population: Population, hapi_direct: httpx.Client
) -> None:
    """Every generated resource is there, and the seeder wrote nothing else under its ids (other
    tests and the scenarios write into the same lab: their resources have other ids)."""
    assert first_run.returncode == 0, first_run.stderr
    for index in (0, 1, 7, 19):
        record = population.record(index)
        suffix = record.patient_id.removeprefix("pat-")  # e.g. a-000000: the seeder's id scheme
        for rtype in ("Observation", "Encounter", "Condition", "Appointment"):
            expected = {r["id"] for r in record.resources[1:] if r["resourceType"] == rtype}
            found = ids_of(hapi_direct, f"/{rtype}", patient=record.patient_id)
            seeded = {i for i in found if f"-{suffix}-" in i}
            assert seeded == expected, (record.patient_id, rtype, sorted(seeded ^ expected))


def test_counts_per_type_match_the_generator_for_these_ids(
    first_run: subprocess.CompletedProcess[str], population: Population, hapi_direct: httpx.Client
) -> None:
    assert first_run.returncode == 0, first_run.stderr
    ids: dict[str, list[str]] = {t: [] for t in SEEDED_TYPES}
    resources = population.shared_resources() + population.groups()
    resources += [r for rec in population.records() for r in rec.resources]
    for resource in resources:
        ids[resource["resourceType"]].append(resource["id"])
    on_server = {}
    for rtype, wanted in ids.items():
        chunks = [wanted[i : i + 80] for i in range(0, len(wanted), 80)]
        on_server[rtype] = sum(total(hapi_direct, f"/{rtype}", _id=",".join(c)) for c in chunks)
    assert on_server == population.summary().resources_by_type


def test_second_run_changes_nothing(
    lab: LabConfig,
    first_run: subprocess.CompletedProcess[str],
    population: Population,
    hapi_direct: httpx.Client,
) -> None:
    assert first_run.returncode == 0, first_run.stderr
    refs = sample_refs(population)
    before = versions(hapi_direct, refs)
    history = total(hapi_direct, "/Patient/pat-b-000003/_history")
    report: SeedReport = seed_lab(lab, OPTIONS, users_share=SHARE, concurrency=4)
    assert report.load.patients == 20 and report.load.retries >= 0
    assert versions(hapi_direct, refs) == before
    assert total(hapi_direct, "/Patient/pat-b-000003/_history") == history
    assert report.users is not None
    assert (report.users.added, report.users.skipped) == (0, 10 + 16)


def test_group_export_returns_exactly_the_tenants_patients(
    lab: LabConfig,
    first_run: subprocess.CompletedProcess[str],
    population: Population,
    hapi_direct: httpx.Client,
) -> None:
    assert first_run.returncode == 0, first_run.stderr
    kickoff = hapi_direct.get(
        "/Group/grp-b/$export",
        params={"_type": "Patient"},
        headers={"Prefer": "respond-async", "Accept": "application/fhir+json"},
    )
    assert kickoff.status_code == 202, kickoff.text
    manifest = poll(lab, hapi_direct, kickoff.headers["Content-Location"])
    exported: set[str] = set()
    for output in manifest["output"]:
        assert output["type"] == "Patient"
        ndjson = hapi_direct.get(direct(lab, output["url"]), headers={"Accept": "*/*"})
        assert ndjson.status_code == 200
        exported |= {json.loads(line)["id"] for line in ndjson.text.splitlines() if line.strip()}
    assert exported == set(population.patient_ids("tenant-b"))


def direct(lab: LabConfig, url: str) -> str:
    """HAPI writes links for the gateway; the seeder's checks talk to HAPI itself."""
    return lab.hapi_base_url + url.removeprefix(lab.gateway_base_url).removeprefix(
        lab.hapi_base_url
    )


def poll(lab: LabConfig, client: httpx.Client, status_url: str) -> dict[str, Any]:
    deadline = time.monotonic() + 300
    while True:
        resp = client.get(direct(lab, status_url), headers={"Accept": "application/json"})
        if resp.status_code == 200:
            manifest: dict[str, Any] = resp.json()
            return manifest
        assert resp.status_code == 202, resp.text
        assert time.monotonic() < deadline, "the export did not finish in 300 s"
        time.sleep(2)


def test_users_exist_with_their_attributes(
    lab: LabConfig, first_run: subprocess.CompletedProcess[str]
) -> None:
    assert first_run.returncode == 0, first_run.stderr
    with KeycloakAdmin(lab.keycloak_url, lab.admin_user, lab.admin_password) as admin:

        def user(realm: str, username: str) -> list[dict[str, Any]]:
            params = {"username": username, "exact": "true"}
            resp = admin.request("GET", f"/realms/{realm}/users", params=params)
            found: list[dict[str, Any]] = admin.expect(resp, 200).json()
            return found

        [patient] = user("tenant-b", "pat-b-000005")
        assert patient["attributes"]["patient"] == ["pat-b-000005"]
        assert patient["attributes"]["fhirUser"] == ["Patient/pat-b-000005"]
        assert patient["enabled"] and patient["emailVerified"]
        assert patient["requiredActions"] == []
        [practitioner] = user("tenant-a", "prac-a-003")
        assert practitioner["attributes"]["fhirUser"] == ["Practitioner/prac-a-003"]
        assert "patient" not in practitioner["attributes"]
        assert user("tenant-a", "pat-b-000005") == []  # each tenant's people in its own realm


def test_a_seeded_patient_can_log_in_with_the_demo_password(
    lab: LabConfig, first_run: subprocess.CompletedProcess[str]
) -> None:
    """Through the realm's admin-cli client, when the realm still allows its password grant."""
    assert first_run.returncode == 0, first_run.stderr
    with KeycloakAdmin(lab.keycloak_url, lab.admin_user, lab.admin_password) as admin:
        clients = admin.request(
            "GET", "/realms/tenant-a/clients", params={"clientId": "admin-cli"}
        ).json()
    if not clients or not clients[0].get("directAccessGrantsEnabled"):
        pytest.skip("tenant-a's admin-cli does not allow the password grant")
    token_url = f"{lab.issuer('tenant-a')}/protocol/openid-connect/token"
    form = {"grant_type": "password", "client_id": "admin-cli", "username": "pat-a-000002"}
    good = httpx.post(token_url, data={**form, "password": DEMO_PASSWORD}, timeout=60)
    assert good.status_code == 200, good.text
    bad = httpx.post(token_url, data={**form, "password": "not-the-password"}, timeout=60)
    assert bad.status_code == 401

"""Keycloak users of the population: their representation and the partialImport conversation."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from labcore.errors import LabError
from labcore.keycloak_admin import KeycloakAdmin
from seed import PopulationOptions, generate_population
from seed.population import Population
from seed.users import (
    DEMO_PASSWORD,
    check_realm,
    demo_credential,
    import_users,
    patient_user,
    population_users,
    portal_patient_count,
    practitioner_user,
    seed_users,
)

KC = "http://kc.test"
ADMIN_ONLY = {"view": ["admin"], "edit": ["admin"]}


def attribute(name: str, permissions: dict[str, list[str]] = ADMIN_ONLY) -> dict[str, Any]:
    return {"name": name, "displayName": name, "permissions": permissions, "multivalued": False}


GOOD_PROFILE = {"attributes": [attribute("username"), attribute("patient"), attribute("fhirUser")]}


class FakeKeycloak:
    """Enough of Keycloak's admin API: token, realm user profiles, partialImport (SKIP)."""

    def __init__(self, profiles: dict[str, dict[str, Any]]) -> None:
        self.profiles = profiles
        self.users: dict[str, set[str]] = {realm: set() for realm in profiles}
        self.imports: list[tuple[str, dict[str, Any]]] = []
        self.answer: Callable[[dict[str, Any]], dict[str, Any]] | None = None
        self.asked: list[str] = []  # "METHOD path" of every request

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.asked.append(f"{request.method} {path}")
        if path == "/realms/master/protocol/openid-connect/token":
            return httpx.Response(200, json={"access_token": "t", "expires_in": 60})
        assert request.headers["Authorization"] == "Bearer t"
        parts = path.split("/")  # '', admin, realms, <realm>, ...
        realm = parts[3]
        if realm not in self.profiles:
            return httpx.Response(404, json={"error": "Realm not found."})
        if path.endswith("/users/profile"):
            return httpx.Response(200, json=self.profiles[realm])
        if path.endswith("/partialImport") and request.method == "POST":
            body = json.loads(request.content)
            self.imports.append((realm, body))
            if self.answer is not None:
                return httpx.Response(200, json=self.answer(body))
            names = [u["username"] for u in body["users"]]
            added = [n for n in names if n not in self.users[realm]]
            self.users[realm].update(names)
            return httpx.Response(
                200,
                json={"added": len(added), "skipped": len(names) - len(added), "overwritten": 0},
            )
        return httpx.Response(405)


def admin_for(fake: FakeKeycloak) -> KeycloakAdmin:
    admin = KeycloakAdmin(KC, "admin", "admin")
    admin._http = httpx.Client(base_url=KC, transport=httpx.MockTransport(fake))
    return admin


@pytest.fixture(scope="module")
def pop() -> Population:
    return generate_population(PopulationOptions(patients=30, seed=5, tenants=3))


# ---- representations ----------------------------------------------------------------------


def test_patient_user_can_log_in_and_is_bound_to_its_record(pop: Population) -> None:
    record = pop.record(4)
    user = patient_user(record)
    assert user["username"] == record.patient_id == "pat-b-000004"
    assert user["attributes"] == {
        "patient": ["pat-b-000004"],
        "fhirUser": ["Patient/pat-b-000004"],
    }
    assert user["enabled"] is True and user["emailVerified"] is True
    assert user["requiredActions"] == []
    name = record.patient["name"][0]
    assert user["firstName"] == " ".join(name["given"]) and user["lastName"] == name["family"]
    assert user["email"] == "pat-b-000004@tenant-b.example.org"
    assert user["credentials"] == [demo_credential()]


def test_practitioner_user_has_fhir_user_only(pop: Population) -> None:
    practitioner = next(r for r in pop.practitioners() if r["id"] == "prac-c-002")
    user = practitioner_user(practitioner)
    assert user["username"] == "prac-c-002"
    assert user["attributes"] == {"fhirUser": ["Practitioner/prac-c-002"]}
    assert user["email"] == "prac-c-002@tenant-c.example.org"


def test_the_credential_is_the_demo_password_hashed_as_keycloak_stores_it() -> None:
    cred = demo_credential()
    assert cred["type"] == "password" and cred["temporary"] is False
    assert "value" not in cred  # never the clear text
    secret, data = json.loads(cred["secretData"]), json.loads(cred["credentialData"])
    assert data["algorithm"] == "pbkdf2-sha512" and data["hashIterations"] >= 27500
    salt = base64.b64decode(secret["salt"])
    digest = hashlib.pbkdf2_hmac("sha512", DEMO_PASSWORD.encode(), salt, data["hashIterations"], 64)
    assert base64.b64decode(secret["value"]) == digest
    assert DEMO_PASSWORD == "demo-only-password"


def test_users_go_to_their_tenants_realm(pop: Population) -> None:
    by_realm = population_users(pop, 0.5)
    assert list(by_realm) == ["tenant-a", "tenant-b", "tenant-c"]
    for realm, users in by_realm.items():
        letter = realm[-1]
        assert all(u["username"].split("-")[1] == letter for u in users)
        pracs = [u for u in users if u["username"].startswith("prac-")]
        assert len(pracs) == pop.options.practitioners_per_org
    patients = sorted(
        u["username"] for users in by_realm.values() for u in users if "patient" in u["attributes"]
    )
    assert patients == sorted(pop.patient_ids()[:15])  # the first half of the patients


@pytest.mark.parametrize(("share", "count"), [(0, 0), (0.2, 6), (0.5, 15), (1, 30), (0.01, 0)])
def test_portal_patient_count(share: float, count: int) -> None:
    assert portal_patient_count(30, share) == count


@pytest.mark.parametrize("share", [-0.1, 1.5, True])
def test_portal_share_must_be_a_fraction(share: float) -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        portal_patient_count(30, share)


# ---- realm checks -------------------------------------------------------------------------


def test_missing_realm_says_fhirlab_up() -> None:
    fake = FakeKeycloak({})
    with pytest.raises(LabError) as caught:
        check_realm(admin_for(fake), "tenant-a")
    assert caught.value.message == "realm tenant-a does not exist in Keycloak"
    assert caught.value.hint.startswith(
        "start the lab with `fhirlab up`, which provisions the tenant realms"
    )
    assert "keycloak/tenants.yaml" in caught.value.hint


def test_undeclared_attributes_are_named() -> None:
    fake = FakeKeycloak({"tenant-a": {"attributes": [attribute("username")]}})
    with pytest.raises(LabError) as caught:
        check_realm(admin_for(fake), "tenant-a")
    assert "does not declare the attribute(s) patient, fhirUser" in caught.value.message
    assert "silently drop" in caught.value.message
    assert "fhirlab up" in caught.value.hint


def test_user_editable_patient_attribute_is_refused() -> None:
    editable = attribute("patient", {"view": ["admin", "user"], "edit": ["admin", "user"]})
    fake = FakeKeycloak({"tenant-a": {"attributes": [editable, attribute("fhirUser")]}})
    with pytest.raises(LabError, match="lets users edit patient"):
        check_realm(admin_for(fake), "tenant-a")


def test_a_well_provisioned_realm_passes() -> None:
    fake = FakeKeycloak({"tenant-a": GOOD_PROFILE})
    assert check_realm(admin_for(fake), "tenant-a") is None  # no LabError
    assert "GET /admin/realms/tenant-a/users/profile" in fake.asked  # the profile was read
    assert fake.imports == []  # and nothing written


# ---- partialImport ------------------------------------------------------------------------


def test_partial_import_payload_skips_existing_users(pop: Population) -> None:
    fake = FakeKeycloak({"tenant-a": GOOD_PROFILE})
    users = [patient_user(pop.record(0)), patient_user(pop.record(3))]
    counts = import_users(admin_for(fake), "tenant-a", users)
    assert (counts.added, counts.skipped) == (2, 0)
    realm, body = fake.imports[0]
    assert realm == "tenant-a"
    assert body == {"ifResourceExists": "SKIP", "users": users}
    again = import_users(admin_for(fake), "tenant-a", users)
    assert (again.added, again.skipped) == (0, 2)


def test_counts_that_do_not_add_up_are_an_error(pop: Population) -> None:
    fake = FakeKeycloak({"tenant-a": GOOD_PROFILE})
    fake.answer = lambda body: {"added": 1, "skipped": 0, "overwritten": 0}
    users = [patient_user(pop.record(0)), patient_user(pop.record(3))]
    with pytest.raises(LabError, match="imported 2 users as added=1, skipped=0"):
        import_users(admin_for(fake), "tenant-a", users)


def test_keycloak_refusing_the_import_is_a_lab_error(pop: Population) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/token"):
            return httpx.Response(200, json={"access_token": "t", "expires_in": 60})
        return httpx.Response(400, json={"errorMessage": "invalid user"})

    admin = KeycloakAdmin(KC, "admin", "admin")
    admin._http = httpx.Client(base_url=KC, transport=httpx.MockTransport(refuse))
    with pytest.raises(LabError, match=r"Keycloak refused POST .*partialImport: 400"):
        import_users(admin, "tenant-a", [patient_user(pop.record(0))])


def test_seed_users_batches_per_realm_and_is_idempotent(pop: Population) -> None:
    profiles = {t.id: GOOD_PROFILE for t in pop.tenants}
    fake = FakeKeycloak(profiles)
    progress: list[tuple[int, int]] = []
    summary = seed_users(
        admin_for(fake), pop, 1.0, batch_size=7, on_progress=lambda d, t: progress.append((d, t))
    )
    total = 30 + 3 * 8
    assert (summary.patients, summary.practitioners) == (30, 24)
    assert (summary.added, summary.skipped) == (total, 0)
    assert all(len(body["users"]) <= 7 for _, body in fake.imports)
    assert [realm for realm, _ in fake.imports].count("tenant-a") == 3  # 18 users / 7
    assert progress[-1] == (total, total)
    assert [d for d, _ in progress] == sorted(d for d, _ in progress)
    again = seed_users(admin_for(fake), pop, 1.0, batch_size=7)
    assert (again.added, again.skipped) == (0, total)
    assert again.to_dict()["realms"]["tenant-b"] == {"users": 18, "added": 0, "skipped": 18}


def test_seed_users_checks_every_realm_before_writing(pop: Population) -> None:
    fake = FakeKeycloak({"tenant-a": GOOD_PROFILE, "tenant-b": GOOD_PROFILE})  # no tenant-c
    with pytest.raises(LabError, match="realm tenant-c does not exist"):
        seed_users(admin_for(fake), pop, 0.2)
    assert fake.imports == []

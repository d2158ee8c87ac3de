"""Keycloak users bound to the population: patient-portal logins and every practitioner.

Each tenant's people live in the Keycloak realm named like the tenant (``tenant-a`` …). A patient
user is called by the patient's id and carries ``patient`` = ``pat-a-000042`` and ``fhirUser`` =
``Patient/pat-a-000042`` (what a SMART token's ``patient`` and ``fhirUser`` claims come from); a
practitioner user carries ``fhirUser`` = ``Practitioner/prac-a-003``. Patient logins exist for the
first ``round(share * patients)`` patients (indexes 0, 1, …, so across tenants round-robin), which
keeps them stable when the population grows.

Users are created in bulk through ``partialImport`` with ``ifResourceExists: SKIP``: running the
seeder again adds only the users that are missing and changes none that exist.

Every user has the same password, :data:`DEMO_PASSWORD`. It is for the lab only and must never
protect anything real. It is imported already hashed (PBKDF2-SHA512, one fixed salt), because
hashing is most of Keycloak's cost of creating a user (about 0.2 s each on a small machine);
Keycloak re-hashes it with the realm's own policy at the first login.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from labcore.errors import LabError
from labcore.keycloak_admin import KeycloakAdmin
from seed.fhir import Resource
from seed.population import Population
from seed.record import PatientRecord

#: The one password of every seeded user. Demo-only: the lab is not a place for real secrets.
DEMO_PASSWORD = "demo-only-password"
DEFAULT_SHARE = 0.2
#: Users per partialImport call: Keycloak's import slows down more than linearly with larger
#: batches (100 users ≈ 1.3 s, 500 users ≈ 15 s on the lab's 2-core machine).
DEFAULT_BATCH = 100
#: Attributes the realm's user profile must declare, or Keycloak (24+) silently drops them.
PROFILE_ATTRIBUTES = ("patient", "fhirUser")

_HASH_ALGORITHM = "pbkdf2-sha512"
_HASH_ITERATIONS = 210_000  # Keycloak's own default for pbkdf2-sha512
_HASH_SALT = b"fhirlab-demo-only-salt"

User = dict[str, Any]
UsersProgress = Callable[[int, int], None]  # (users done, users total)


@dataclass(frozen=True, slots=True)
class RealmUsers:
    """What one realm got: users sent, added now, already there (skipped)."""

    realm: str
    users: int
    added: int
    skipped: int


@dataclass(frozen=True, slots=True)
class UsersSummary:
    patients: int  # patient users sent (over all realms)
    practitioners: int
    realms: tuple[RealmUsers, ...] = field(default_factory=tuple)
    seconds: float = 0.0

    @property
    def added(self) -> int:
        return sum(r.added for r in self.realms)

    @property
    def skipped(self) -> int:
        return sum(r.skipped for r in self.realms)

    def to_dict(self) -> dict[str, Any]:
        return {
            "patient_users": self.patients,
            "practitioner_users": self.practitioners,
            "added": self.added,
            "skipped": self.skipped,
            "seconds": round(self.seconds, 2),
            "realms": {
                r.realm: {"users": r.users, "added": r.added, "skipped": r.skipped}
                for r in self.realms
            },
        }


# ---- user representations ------------------------------------------------------------------


def portal_patient_count(patients: int, share: float) -> int:
    """How many patients get a portal login: ``round(share * patients)``, 0 ≤ share ≤ 1."""
    if isinstance(share, bool) or not 0 <= share <= 1:
        raise ValueError(f"the share of patients with a login must be between 0 and 1; got {share}")
    return round(share * patients)


@cache
def demo_credential() -> dict[str, Any]:
    """:data:`DEMO_PASSWORD` as Keycloak stores it (computed once per process)."""
    digest = hashlib.pbkdf2_hmac(
        "sha512", DEMO_PASSWORD.encode(), _HASH_SALT, _HASH_ITERATIONS, dklen=64
    )
    secret = {
        "value": base64.b64encode(digest).decode(),
        "salt": base64.b64encode(_HASH_SALT).decode(),
        "additionalParameters": {},
    }
    data = {
        "hashIterations": _HASH_ITERATIONS,
        "algorithm": _HASH_ALGORITHM,
        "additionalParameters": {},
    }
    return {
        "type": "password",
        "temporary": False,
        "secretData": json.dumps(secret),
        "credentialData": json.dumps(data),
    }


def _user(username: str, tenant: str, name: dict[str, Any], attributes: dict[str, str]) -> User:
    given = " ".join(name.get("given", [])) or username
    return {
        "username": username,
        "enabled": True,
        "emailVerified": True,
        "firstName": given,
        "lastName": name.get("family", username),
        # Unique by construction (generated e-mail addresses may repeat within a realm).
        "email": f"{username}@{tenant}.example.org",
        "attributes": {key: [value] for key, value in attributes.items()},
        "requiredActions": [],
        "credentials": [demo_credential()],
        # partialImport does not grant the realm's default roles (offline_access, uma_authorization)
        # as user creation does; name them, so seeded users behave like any other user.
        "realmRoles": [f"default-roles-{tenant}"],
    }


def patient_user(record: PatientRecord) -> User:
    pid = record.patient_id
    name = record.patient.get("name", [{}])[0]
    return _user(pid, record.tenant, name, {"patient": pid, "fhirUser": f"Patient/{pid}"})


def practitioner_user(practitioner: Resource) -> User:
    pid = practitioner["id"]
    tenant = _tenant_of(practitioner)
    name = practitioner.get("name", [{}])[0]
    return _user(pid, tenant, name, {"fhirUser": f"Practitioner/{pid}"})


def population_users(population: Population, share: float) -> dict[str, list[User]]:
    """Users to create, by realm (= tenant id): practitioners first, then patients."""
    by_realm: dict[str, list[User]] = {t.id: [] for t in population.tenants}
    for resource in population.practitioners():
        if resource["resourceType"] == "Practitioner":
            by_realm[_tenant_of(resource)].append(practitioner_user(resource))
    count = portal_patient_count(len(population), share)
    for record in population.records(0, count):
        by_realm[record.tenant].append(patient_user(record))
    return by_realm


def _tenant_of(resource: Resource) -> str:
    """The tenant a generated resource belongs to, from its ``meta.tag``."""
    return str(resource["meta"]["tag"][0]["code"])


# ---- Keycloak -------------------------------------------------------------------------------


def check_realm(admin: KeycloakAdmin, realm: str) -> None:
    """The realm exists and its user profile keeps our attributes, editable by admins only."""
    resp = admin.request("GET", f"/realms/{realm}/users/profile")
    if resp.status_code == 404:
        raise LabError(
            f"realm {realm} does not exist in Keycloak",
            "start the lab with `fhirlab up`, which provisions the tenant realms (those listed "
            "in keycloak/tenants.yaml: seed no more --tenants than it lists, or use --no-users)",
        )
    declared = {a.get("name"): a for a in admin.expect(resp, 200).json().get("attributes", [])}
    missing = [name for name in PROFILE_ATTRIBUTES if name not in declared]
    if missing:
        raise LabError(
            f"realm {realm}'s user profile does not declare the attribute(s) "
            f"{', '.join(missing)}, so Keycloak would silently drop them from the users",
            "start the lab with `fhirlab up`, which provisions the tenant realms with them",
        )
    editable = [
        name
        for name in PROFILE_ATTRIBUTES
        if "user" in declared[name].get("permissions", {}).get("edit", [])
    ]
    if editable:
        raise LabError(
            f"realm {realm}'s user profile lets users edit {', '.join(editable)}: a patient "
            "could change which record their login opens",
            "restrict the attribute's edit permission to admin (`fhirlab up` provisions it so)",
        )


def import_users(admin: KeycloakAdmin, realm: str, users: Sequence[User]) -> RealmUsers:
    """One ``partialImport`` call; the counts Keycloak reports must add up to what was sent."""
    body = {"ifResourceExists": "SKIP", "users": list(users)}
    resp = admin.expect(admin.request("POST", f"/realms/{realm}/partialImport", json=body), 200)
    result = resp.json()
    added, skipped = int(result.get("added", 0)), int(result.get("skipped", 0))
    overwritten = int(result.get("overwritten", 0))
    if added + skipped + overwritten != len(users) or overwritten:
        raise LabError(
            f"Keycloak realm {realm} imported {len(users)} users as added={added}, "
            f"skipped={skipped}, overwritten={overwritten}; expected them all added or skipped",
            "check `fhirlab logs keycloak`",
        )
    return RealmUsers(realm, len(users), added, skipped)


def seed_users(
    admin: KeycloakAdmin,
    population: Population,
    share: float = DEFAULT_SHARE,
    *,
    batch_size: int = DEFAULT_BATCH,
    on_progress: UsersProgress | None = None,
) -> UsersSummary:
    """Create (or keep) every practitioner's and ``share`` of patients' logins, realm by realm."""
    started = time.perf_counter()
    by_realm = population_users(population, share)
    for realm in by_realm:  # every realm checked before anything is written
        check_realm(admin, realm)
    total = sum(len(users) for users in by_realm.values())
    done = 0
    realms = []
    for realm, users in by_realm.items():
        added = skipped = 0
        for batch in _batches(users, batch_size):
            counts = import_users(admin, realm, batch)
            added, skipped = added + counts.added, skipped + counts.skipped
            done += len(batch)
            if on_progress is not None:
                on_progress(done, total)
        realms.append(RealmUsers(realm, len(users), added, skipped))
    practitioners = sum(
        1 for r in population.practitioners() if r["resourceType"] == "Practitioner"
    )
    return UsersSummary(
        patients=total - practitioners,
        practitioners=practitioners,
        realms=tuple(realms),
        seconds=time.perf_counter() - started,
    )


def _batches(items: Sequence[User], size: int) -> Iterator[Sequence[User]]:
    if size < 1:
        raise ValueError(f"batch size must be at least 1; got {size}")
    for start in range(0, len(items), size):
        yield items[start : start + size]

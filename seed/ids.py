"""Stable identifiers and seed derivation.

Every id is a pure function of (tenant, index[, sequence]) so that a loader can ``PUT Type/id``
the same population twice and get the same server state. Seeds are derived from the master seed
by hashing, never by drawing from a shared stream, so that patient *k* is the same whatever the
population size and patients can be generated in any order, in parallel or resumed.
"""

from __future__ import annotations

import hashlib
import random
import re
import string

#: FHIR R4 ``id`` datatype: ``[A-Za-z0-9\-\.]{1,64}``.
FHIR_ID_RE = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")

MAX_TENANTS = 26
TENANT_LETTERS = string.ascii_lowercase


def tenant_letter(tenant_index: int) -> str:
    """Letter of the ``tenant_index``-th tenant: 0 → ``a``."""
    if not 0 <= tenant_index < MAX_TENANTS:
        raise ValueError(f"tenant index must be in 0..{MAX_TENANTS - 1}, got {tenant_index}")
    return TENANT_LETTERS[tenant_index]


def tenant_id(tenant_index: int) -> str:
    """Tenant id as used in ``meta.tag`` and by the gateway: ``tenant-a``, ``tenant-b``, …"""
    return f"tenant-{tenant_letter(tenant_index)}"


def tenant_of_patient(index: int, tenants: int) -> int:
    """Patients are dealt round-robin: patient *k* belongs to tenant ``k % tenants``."""
    return index % tenants


def patient_key(index: int, tenants: int) -> str:
    """The part shared by a patient's id and the ids of all its resources: ``a-000042``."""
    return f"{tenant_letter(tenant_of_patient(index, tenants))}-{index:06d}"


def patient_id(index: int, tenants: int) -> str:
    """``pat-a-000042``: tenant letter plus the global patient index (unique by itself)."""
    return f"pat-{patient_key(index, tenants)}"


def organization_id(tenant_index: int) -> str:
    return f"org-{tenant_letter(tenant_index)}"


def practitioner_id(tenant_index: int, number: int) -> str:
    return f"prac-{tenant_letter(tenant_index)}-{number:03d}"


def practitioner_role_id(tenant_index: int, number: int) -> str:
    return f"role-{tenant_letter(tenant_index)}-{number:03d}"


def group_id(tenant_index: int) -> str:
    return f"grp-{tenant_letter(tenant_index)}"


def mrn_system(tenant_index: int) -> str:
    """Medical record numbers are issued per organisation, so each has its own system."""
    return f"https://fhirlab.dev/{tenant_id(tenant_index)}/mrn"


def mrn(index: int, tenants: int) -> str:
    """A medical record number that looks arbitrary but is unique per patient.

    ``index * 7919 mod 10**8`` is a bijection on 0..10**8-1 (7919 is prime and coprime to 10),
    so two patients never share an MRN.
    """
    letter = tenant_letter(tenant_of_patient(index, tenants)).upper()
    return f"{letter}{(index * 7919 + 104729) % 10**8:08d}"


def npi(tenant_index: int, number: int) -> str:
    """A 10-digit NPI with a valid Luhn check digit (prefix 80840 as the NPI standard says).

    The nine leading digits start with 9, which no issued NPI starts with today (NPIs begin with
    1 or 2), so these are recognisably synthetic yet pass the check-digit validation.
    """
    body = f"9{tenant_index:02d}{number:06d}"
    return body + _luhn_check_digit("80840" + body)


def npi_is_valid(value: str) -> bool:
    if len(value) != 10 or not value.isdigit():
        return False
    return _luhn_check_digit("80840" + value[:9]) == value[9]


def _luhn_check_digit(digits: str) -> str:
    total = 0
    for position, char in enumerate(reversed(digits)):
        d = int(char)
        if position % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def derive_seed(master: int, *parts: str | int) -> int:
    """A 64-bit seed for ``parts`` under ``master``: a hash, so independent of draw order."""
    text = ":".join([str(master), *map(str, parts)])
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def stream(master: int, *parts: str | int) -> random.Random:
    """A random stream of its own for one domain of one subject (e.g. patient 42, vitals)."""
    return random.Random(derive_seed(master, *parts))

"""Seed the running lab: the population into HAPI (directly), its users into Keycloak, a record.

``seed_lab`` checks everything it will need before writing anything (HAPI answers, every tenant
realm exists and declares the user attributes), loads the FHIR data, creates the users, and only
then writes ``<lab home>/seed.json``: the options (enough to regenerate the population byte for
byte), the generator's summary, and what the load and the user import did. The record is removed
once the checks pass and before the first write, so a failed or interrupted run never leaves one
that claims a population the servers do not fully hold. ``read_seed_record`` is how later
commands learn what is seeded.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from labcore.config import LabConfig
from labcore.errors import LabError
from labcore.keycloak_admin import KeycloakAdmin
from seed.loader import DEFAULT_CONCURRENCY, HAPI_HINT, LoadSummary, ProgressFn, aload_population
from seed.options import PopulationOptions
from seed.population import generate_population
from seed.users import (
    DEFAULT_SHARE,
    UsersProgress,
    UsersSummary,
    check_realm,
    portal_patient_count,
    seed_users,
)

SEED_RECORD = "seed.json"
RECORD_SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True)
class SeedReport:
    options: PopulationOptions
    users_share: float | None  # None: no users were created
    load: LoadSummary
    users: UsersSummary | None
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        population = self.load.population
        return {
            "schema_version": RECORD_SCHEMA_VERSION,
            "seeded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "options": self.options.to_dict(),
            "users_share": self.users_share,
            "seconds": round(self.seconds, 2),
            "load": self.load.to_dict(),
            "users": self.users.to_dict() if self.users else None,
            "summary": population.to_dict() if population else None,
        }


def check_hapi(base_url: str, transport: httpx.BaseTransport | None = None) -> None:
    """HAPI answers ``/metadata`` with a CapabilityStatement, or a LabError says how it fails."""
    try:
        with httpx.Client(timeout=30, transport=transport) as http:
            resp = http.get(f"{base_url}/metadata", headers={"Accept": "application/fhir+json"})
    except httpx.TransportError as exc:
        raise LabError(
            f"HAPI FHIR at {base_url} is unreachable ({exc.__class__.__name__})", HAPI_HINT
        ) from exc
    if resp.status_code != 200 or b"CapabilityStatement" not in resp.content:
        raise LabError(
            f"HAPI FHIR at {base_url} did not answer /metadata with a CapabilityStatement "
            f"({resp.status_code})",
            "check `fhirlab status` and `fhirlab logs hapi`",
        )


def seed_lab(
    cfg: LabConfig,
    options: PopulationOptions,
    *,
    users_share: float | None = DEFAULT_SHARE,
    concurrency: int = DEFAULT_CONCURRENCY,
    on_load_progress: ProgressFn | None = None,
    on_users_progress: UsersProgress | None = None,
) -> SeedReport:
    """Load ``options``' population into the lab; users too unless ``users_share`` is None."""
    started = time.perf_counter()
    population = generate_population(options)
    check_hapi(cfg.hapi_base_url)
    with ExitStack() as stack:
        admin = None
        if users_share is not None:
            portal_patient_count(len(population), users_share)  # a bad share fails before loading
            admin = stack.enter_context(
                KeycloakAdmin(cfg.keycloak_url, cfg.admin_user, cfg.admin_password)
            )
            for tenant in population.tenants:
                check_realm(admin, tenant.id)
        record_path(cfg).unlink(missing_ok=True)  # from here on the servers are being changed
        load = asyncio.run(
            aload_population(
                population, cfg.hapi_base_url, concurrency=concurrency, on_progress=on_load_progress
            )
        )
        users = None
        if admin is not None and users_share is not None:
            users = seed_users(admin, population, users_share, on_progress=on_users_progress)
    report = SeedReport(options, users_share, load, users, time.perf_counter() - started)
    write_seed_record(cfg, report)
    return report


def record_path(cfg: LabConfig) -> Path:
    return cfg.home / SEED_RECORD


def write_seed_record(cfg: LabConfig, report: SeedReport) -> Path:
    path = record_path(cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
    os.replace(partial, path)
    return path


def read_seed_record(cfg: LabConfig) -> dict[str, Any] | None:
    """What the last complete ``fhirlab seed`` loaded into this lab, or None if nothing is."""
    path = record_path(cfg)
    if not path.is_file():
        return None
    try:
        record: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise LabError(
            f"{path} is not valid JSON ({exc})", "run `fhirlab seed` again to rewrite it"
        ) from exc
    return record


def seeded_options(cfg: LabConfig) -> PopulationOptions | None:
    """The options of the seeded population (regenerate it with ``generate_population``)."""
    record = read_seed_record(cfg)
    return None if record is None else PopulationOptions.from_mapping(record["options"])

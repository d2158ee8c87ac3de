"""Client profiles: one YAML file per vendor client under keycloak/clients/.

A profile says everything the authorization server decides about a client: its tenant(s), public
or confidential, how it authenticates, which grants and scopes it may have, its token lifetime and
refresh/offline policy, and the issuance rules Keycloak applies when it issues a token
(`labcore/issuance.py`). `fhirlab clients apply` provisions profiles into Keycloak; scenarios refer
to them by `client_id`. Secrets in profiles are demo-only.
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from labcore.issuance import IssuancePolicy
from labcore.scopes import SPECIAL_SCOPES, ScopeError, parse_scope
from labcore.yamlfile import load_directory, load_model

PROFILE_DIR = Path("keycloak") / "clients"
CLIENT_ID = r"^[a-z0-9][a-z0-9-]{1,62}$"
TENANT = r"^[a-z0-9][a-z0-9-]{1,62}$"
RESOURCE_TYPE = r"^[A-Z][A-Za-z]{1,63}$"


class ClientClass(StrEnum):
    """What kind of client this is; the gateway's client policy is keyed by it (C01-C04)."""

    OPERATIONAL_AI = "operational-ai"  # AI tools acting for one patient/clinician session
    ANALYTICS_BACKEND = "analytics-backend"  # approved population analytics (bulk export)
    CLINICAL_APP = "clinical-app"  # non-AI apps (EHR-side tools, patient apps)


class Authenticator(StrEnum):
    NONE = "none"  # public client
    CLIENT_SECRET = "client-secret"
    PRIVATE_KEY_JWT = "private-key-jwt"


Grant = Literal["authorization_code", "client_credentials", "refresh_token"]


class ClientProfile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    schema_version: Literal[1]
    client_id: str = Field(pattern=CLIENT_ID)
    description: str = Field(min_length=1)
    tenants: tuple[str, ...] = Field(min_length=1)
    client_class: ClientClass = Field(alias="class")
    public: bool = False
    authenticator: Authenticator
    secret: str | None = Field(default=None, description="demo-only client secret")
    grant_types: tuple[Grant, ...] = Field(min_length=1)
    scopes: tuple[str, ...] = Field(min_length=1, description="scopes the client may request")
    default_scopes: tuple[str, ...] = Field(
        default=(), description="subset of scopes granted even when not requested"
    )
    access_token_lifetime_s: int = Field(ge=30, le=7 * 24 * 3600)
    refresh_tokens: bool = True
    redirect_uris: tuple[str, ...] = ()
    pkce: bool = True
    declared_resources: tuple[str, ...] = Field(
        default=(),
        description="resource types the vendor declared it needs: the gateway's out_of_profile "
        "detector alerts outside them (default: the types its scopes name)",
    )
    issuance: IssuancePolicy | None = Field(
        default=None,
        description="the SMART issuance policy Keycloak applies to this client's tokens "
        "(labcore/issuance.py); absent: Keycloak issues what the registration allows",
    )

    @property
    def offline_access(self) -> bool:
        return "offline_access" in self.scopes

    @property
    def confidential(self) -> bool:
        return not self.public

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        problems = []
        for tenant in self.tenants:
            if not _matches(TENANT, tenant):
                problems.append(f"tenant {tenant!r} must be lower-case letters, digits and '-'")
        if self.public and self.authenticator is not Authenticator.NONE:
            problems.append("a public client has no authenticator: use authenticator: none")
        if not self.public and self.authenticator is Authenticator.NONE:
            problems.append("a confidential client needs client-secret or private-key-jwt")
        if self.authenticator is Authenticator.CLIENT_SECRET and not self.secret:
            problems.append("authenticator client-secret needs a (demo-only) secret")
        if self.authenticator is not Authenticator.CLIENT_SECRET and self.secret:
            problems.append("secret is only used with authenticator client-secret")
        if "client_credentials" in self.grant_types and self.public:
            problems.append("client_credentials needs a confidential client")
        if "authorization_code" in self.grant_types and not self.redirect_uris:
            problems.append("authorization_code needs at least one redirect_uri")
        for scope in self.scopes:
            problem = scope_problem(scope)
            if problem:
                problems.append(problem)
        for scope in self.default_scopes:
            if scope not in self.scopes:
                problems.append(f"default scope {scope!r} is not among scopes")
        for rtype in self.declared_resources:
            if not _matches(RESOURCE_TYPE, rtype):
                problems.append(f"declared resource {rtype!r} is not a FHIR resource type name")
        if problems:
            raise ValueError("; ".join(problems))
        return self


def _matches(pattern: str, value: str) -> bool:
    return re.fullmatch(pattern, value) is not None


def scope_problem(scope: str) -> str | None:
    """Why `scope` cannot be registered, or None if it is a SMART scope the lab knows."""
    if scope in SPECIAL_SCOPES:
        return None
    try:
        parse_scope(scope)
    except ScopeError as exc:
        return (
            f"scope {scope!r} is not a SMART scope ({exc.reason}); allowed: "
            "context/Type.perms (e.g. patient/Appointment.rs) or one of "
            + ", ".join(sorted(SPECIAL_SCOPES))
        )
    return None


def load_profile(path: Path) -> ClientProfile:
    return load_model(path, ClientProfile)


def load_profiles(directory: Path) -> dict[str, ClientProfile]:
    """Every profile in `directory`, by client_id; all problems of all files at once."""

    def client_id(profile: ClientProfile) -> str:
        return profile.client_id

    return load_directory(directory, ClientProfile, client_id, client_id, "client_id")


def lab_profiles(repo: Path, own: Path | None = None) -> dict[str, ClientProfile]:
    """The lab's client profiles (keycloak/clients/ under `repo`); with `own`, that directory's
    profiles over them by client_id: a team's changed clients replace the lab's, its new ones
    join them."""
    profiles = load_profiles(repo / PROFILE_DIR)
    if own is not None:
        profiles.update(load_profiles(own))
    return profiles

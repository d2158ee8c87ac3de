"""The lab's tenants (keycloak/tenants.yaml): one Keycloak realm per tenant."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from labcore.yamlfile import load_model

TENANTS_FILE = Path("keycloak") / "tenants.yaml"


class Tenant(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")
    display_name: str = Field(min_length=1)
    launch_secret: str = Field(min_length=32, description="demo-only HS256 key for launch handles")
    gateway_secret: str = Field(min_length=16, description="demo-only introspection client secret")

    @property
    def realm(self) -> str:
        return self.id


class Tenants(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1]
    tenants: tuple[Tenant, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> Tenants:
        ids = [t.id for t in self.tenants]
        if len(set(ids)) != len(ids):
            raise ValueError(f"tenant ids must be unique: {ids}")
        return self

    def get(self, tenant_id: str) -> Tenant:
        for tenant in self.tenants:
            if tenant.id == tenant_id:
                return tenant
        raise KeyError(tenant_id)

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(t.id for t in self.tenants)


def load_tenants(repo: Path) -> Tenants:
    return load_model(repo / TENANTS_FILE, Tenants)

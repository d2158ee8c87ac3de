"""The scenario model: one AI-vendor client's registration, behaviour and expected verdicts.

Frozen pydantic models parsed from `scenarios/<name>.yaml` (schema in
docs/reference/scenarios.md). What a field says on its own is checked here; what needs several
fields or the client profiles (launch and user, unique step names, client exists, tenant,
registered scopes, grant types) is checked by `simulator.scenarios.checks`, so that every
problem names its own field and line.
"""

from __future__ import annotations

from functools import cached_property
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from labcore.profiles import CLIENT_ID, TENANT, scope_problem
from simulator.scenarios.steps import StepBase, step_union
from simulator.scenarios.vocabulary import Alert, ControlId, Kind, Launch, User, Verdict

SCENARIO_NAME = r"^[a-z0-9][a-z0-9-]{1,62}$"
USER_LAUNCHES = (Launch.STANDALONE, Launch.EHR)


class SessionEnd(BaseModel):
    """What happens when the session ends (controls C03 and C09)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    revoke: bool = Field(default=True, description="the client revokes its tokens (RFC 7009)")
    keep_refresh_token: bool = Field(
        default=False, description="the client keeps its refresh token and refreshes later"
    )
    replay_access_token: bool = Field(
        default=False, description="the old access token is replayed after the session"
    )


class LoadSettings(BaseModel):
    """How the scenario takes part in the load run (`fhirlab load`, docs/explanation/load.md)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = Field(default=True, description="false: the load run leaves this scenario out")
    weight: int = Field(
        default=1,
        gt=0,
        le=1000,
        description="relative share of the load run's virtual users given to this scenario",
    )


class Scenario(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1]
    name: str = Field(pattern=SCENARIO_NAME)
    title: str = Field(min_length=1)
    kind: Kind
    remarks: str = Field(min_length=1, description="why this scenario exists, what it shows")
    client: str = Field(pattern=CLIENT_ID, description="client_id of a keycloak/clients profile")
    tenant: str | None = Field(default=None, pattern=TENANT)
    launch: Launch
    user: User | None = None
    scope: str = Field(default="", description="what the client asks, space-separated")
    scope_probe: bool = Field(
        default=False,
        description="scope deliberately asks more than registered: the AS must refuse or "
        "down-scope it (C11); steps then run only with what was granted",
    )
    steps: tuple[step_union(), ...] = Field(min_length=1)  # type: ignore[valid-type]
    session_end: SessionEnd = SessionEnd()
    expect: dict[ControlId, Verdict] = Field(default_factory=dict)
    alerts: tuple[Alert, ...] = ()
    load: LoadSettings = LoadSettings()

    @field_validator("scope")
    @classmethod
    def _smart_scopes(cls, value: str) -> str:
        problems = [p for p in map(scope_problem, value.split()) if p]
        if problems:
            raise ValueError("; ".join(problems))
        return value

    @property
    def scopes(self) -> tuple[str, ...]:
        return tuple(self.scope.split())

    @cached_property
    def steps_by_name(self) -> dict[str, StepBase]:
        return {step.name: step for step in self.steps}

    def weights(self) -> dict[str, int]:
        """Step name → weight, in file order (what the load run draws from)."""
        return {step.name: step.weight for step in self.steps}

    def verdict(self, control: str) -> Verdict:
        return Verdict(self.expect.get(control, Verdict.NA))  # type: ignore[call-overload]

"""An exercise, as written in `catalogue/<nn>-<slug>.yaml` (schema: docs/exercises/README.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from labcore.errors import LabError
from labcore.yamlfile import load_directory

CATALOGUE = Path(__file__).parent / "catalogue"
FAMILIES = (
    "scopes",
    "lifetime",
    "offline access",
    "bulk export",
    "compartment side door",
    "revocation",
    "tenancy",
    "anomaly alert",
)


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Goal(_Strict):
    """One thing the check requires of one scenario's replay; exactly one requirement each."""

    scenario: str
    control: str | None = Field(default=None, pattern=r"^C(0[1-9]|1[0-2])$")
    verdict: Literal["held", "violated"] | None = None
    works: bool | None = None  # its own (non-probing) steps answered 2xx, a token obtained
    max_exposure_s: float | None = Field(default=None, gt=0)
    alerts: tuple[str, ...] | None = None  # exactly these detectors raised (empty: none)

    @model_validator(mode="after")
    def _one_requirement(self) -> Self:
        kinds = [
            self.verdict is not None or self.control is not None,
            self.works is not None,
            self.max_exposure_s is not None,
            self.alerts is not None,
        ]
        if sum(kinds) != 1:
            raise ValueError("a goal has one of: control + verdict, works, max_exposure_s, alerts")
        if (self.control is None) != (self.verdict is None):
            raise ValueError("control and verdict go together")
        return self


class MayChange(_Strict):
    """What the trainee may edit in the workspace."""

    clients: tuple[str, ...] = ()  # client profiles copied into clients/
    policy: bool = False  # policy.yaml
    scenario_fields: dict[str, tuple[str, ...]] = Field(default_factory=dict)


class Start(_Strict):
    """The misconfiguration the workspace starts from, over the lab's shipped files."""

    policy: dict[str, Any] = Field(default_factory=dict)  # merged into gateway/policy.yaml
    clients: dict[str, dict[str, Any]] = Field(default_factory=dict)  # fields over a profile


class Exercise(_Strict):
    schema_version: Literal[1]
    number: int = Field(ge=1, le=99)
    slug: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,40}$")
    family: Literal[FAMILIES]  # type: ignore[valid-type]
    title: str = Field(min_length=1)
    minutes: int = Field(ge=1, le=120, description="about how long a trainee takes")
    story: str = Field(min_length=1)
    goal: str = Field(min_length=1)
    may_change: MayChange
    start: Start = Start()
    replay: tuple[str, ...] = Field(min_length=1)
    goals: tuple[Goal, ...] = Field(min_length=1)
    hints: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        unknown = sorted({g.scenario for g in self.goals} - set(self.replay))
        if unknown:
            raise ValueError(f"goals name scenarios not replayed: {', '.join(unknown)}")
        if self.start.policy and not self.may_change.policy:
            raise ValueError("start.policy needs may_change.policy (the trainee must see it)")
        stray = sorted(set(self.start.clients) - set(self.may_change.clients))
        if stray:
            raise ValueError(f"start.clients not in may_change.clients: {', '.join(stray)}")
        outside = sorted(set(self.may_change.scenario_fields) - set(self.replay))
        if outside:
            raise ValueError(f"scenario_fields for scenarios not replayed: {', '.join(outside)}")
        return self

    @property
    def name(self) -> str:
        return f"{self.number:02d}-{self.slug}"


def load_catalogue(directory: Path = CATALOGUE) -> dict[int, Exercise]:
    """Every exercise, by number; all problems of all files at once."""
    return load_directory(directory, Exercise, lambda e: e.number, lambda e: e.name, "exercise")


def exercise(number: int, directory: Path = CATALOGUE) -> Exercise:
    catalogue = load_catalogue(directory)
    if number not in catalogue:
        raise LabError(
            f"no exercise {number}", f"choose one of {', '.join(map(str, sorted(catalogue)))}"
        )
    return catalogue[number]

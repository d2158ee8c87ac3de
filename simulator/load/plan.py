"""The load plan: which scenarios run under load, with which share of the users, and which of
their steps become Locust tasks (pure: no server, no Locust).

A scenario becomes one Locust user class, weighted by its `load.weight`; each of its steps that
makes sense as a repeated request becomes a task with the step's `weight`. A task runs one
request of its step's walk (`simulator.steps`, the interpreter the replay uses too) per run:

- `request`: the request itself (writes too, unless the plan is read-only);
- `page_walk`: its pages, one per task run: the first page with `_count`, then the `next` link,
  until `max_pages` or the last page, then from the first page again;
- `burst`: its request (Locust's users and their pace replace `times` and `concurrency`).

`export` (an asynchronous job on the FHIR server, polled for minutes) and `refresh` (load on the
authorization server, not the gateway) are left out; so is the session end (revocation, replay).
The token is obtained once per virtual user, through the scenario's real SMART flow.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from labcore.errors import LabError
from simulator.scenarios import (
    BurstStep,
    ExportStep,
    PageWalkStep,
    RefreshStep,
    RequestStep,
    Scenario,
    StepBase,
)

WRITE_METHODS = frozenset({"POST", "PUT", "DELETE"})
LEFT_OUT: dict[type[StepBase], str] = {
    ExportStep: "bulk export: an asynchronous server job, not a repeated request",
    RefreshStep: "token refresh: load on the authorization server, not on the gateway",
}


class TaskKind(StrEnum):
    REQUEST = "request"
    PAGE_WALK = "page_walk"


@dataclass(frozen=True, slots=True)
class LoadTask:
    """One Locust task: a step (its definition, run by the step interpreter) and its weight."""

    name: str  # the request name in the statistics: "<scenario>: <step>"
    definition: RequestStep | PageWalkStep | BurstStep
    weight: int

    @property
    def step(self) -> str:
        return self.definition.name

    @property
    def kind(self) -> TaskKind:
        walks = isinstance(self.definition, PageWalkStep)
        return TaskKind.PAGE_WALK if walks else TaskKind.REQUEST

    @property
    def method(self) -> str:
        return self.definition.request_line.method

    @property
    def body(self) -> Any:
        return getattr(self.definition, "body", None)

    @property
    def count(self) -> int | None:  # page walks: _count of the first page
        return getattr(self.definition, "count", None)

    @property
    def max_pages(self) -> int | None:  # page walks: pages before starting over
        return getattr(self.definition, "max_pages", None)

    @property
    def next_page_name(self) -> str:
        return f"{self.name} (next pages)"


@dataclass(frozen=True, slots=True)
class ScenarioLoad:
    """One scenario under load: its user-class weight, its tasks, the steps left out and why."""

    scenario: Scenario
    weight: int
    tasks: tuple[LoadTask, ...]
    left_out: tuple[tuple[str, str], ...] = ()

    @property
    def name(self) -> str:
        return self.scenario.name


@dataclass(frozen=True, slots=True)
class LoadPlan:
    scenarios: tuple[ScenarioLoad, ...]
    left_out: tuple[tuple[str, str], ...] = ()  # (scenario, why)
    read_only: bool = False

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.scenarios]

    @property
    def total_weight(self) -> int:
        return sum(s.weight for s in self.scenarios)

    def to_list(self) -> list[dict[str, Any]]:
        return [
            {"name": s.name, "weight": s.weight, "tasks": [t.name for t in s.tasks]}
            for s in self.scenarios
        ]


def task_name(scenario: str, step: str) -> str:
    return f"{scenario}: {step}"


def step_task(scenario: str, step: StepBase, *, read_only: bool) -> LoadTask | str:
    """The task a step becomes, or why it has none."""
    if isinstance(step, RequestStep):
        line = step.request_line
        is_search = line.url.split("?")[0].endswith("_search")
        if read_only and line.method in WRITE_METHODS and not is_search:
            return f"{line.method} is a write (read-only load run)"
    if isinstance(step, RequestStep | PageWalkStep | BurstStep):
        return LoadTask(task_name(scenario, step.name), step, step.weight)
    return LEFT_OUT.get(type(step), f"step type {step.type_name!r} has no load task")


def scenario_load(scenario: Scenario, *, read_only: bool = False) -> ScenarioLoad:
    tasks: list[LoadTask] = []
    left_out: list[tuple[str, str]] = []
    for step in scenario.steps:
        task = step_task(scenario.name, step, read_only=read_only)
        if isinstance(task, LoadTask):
            tasks.append(task)
        else:
            left_out.append((step.name, task))
    return ScenarioLoad(scenario, scenario.load.weight, tuple(tasks), tuple(left_out))


def build_plan(
    library: Mapping[str, Scenario],
    names: Sequence[str] | None = None,
    *,
    read_only: bool = False,
) -> LoadPlan:
    """The plan for `names` (default: every scenario whose `load.enabled` is true). A scenario
    named explicitly runs even if its `load.enabled` is false; one with no load task never does.
    Unknown names and an empty plan raise LabError."""
    unknown = [n for n in names or () if n not in library]
    if unknown:
        raise LabError(
            f"unknown scenario(s): {', '.join(unknown)}", f"choose from {', '.join(library)}"
        )
    chosen = list(dict.fromkeys(names)) if names else list(library)
    included: list[ScenarioLoad] = []
    left_out: list[tuple[str, str]] = []
    for name in chosen:
        scenario = library[name]
        if not names and not scenario.load.enabled:
            left_out.append((name, "load: enabled: false"))
            continue
        load = scenario_load(scenario, read_only=read_only)
        if not load.tasks:
            why = "; ".join(f"{step}: {reason}" for step, reason in load.left_out)
            left_out.append((name, f"no step runs under load ({why})"))
            continue
        included.append(load)
    if not included:
        detail = "; ".join(f"{n}: {why}" for n, why in left_out)
        raise LabError(
            f"no scenario to run under load ({detail or 'the library is empty'})",
            "choose scenarios that have request, page_walk or burst steps",
        )
    return LoadPlan(tuple(included), tuple(left_out), read_only)

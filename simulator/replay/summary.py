"""What a replay shows, summarised (pure): the control matrix (which scenario holds or breaks
each control) and the blast radius of each scenario with the controls on and off."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from gateway.controls import CONTROLS
from simulator.replay.model import ScenarioRun

HELD, VIOLATED = "held", "violated"


@dataclass(frozen=True)
class ControlRow:
    control: str
    title: str
    held_by: tuple[str, ...]  # scenarios whose run shows the control held
    violated_by: tuple[str, ...]  # scenarios whose run shows it broken
    expectations_ok: bool  # every scenario's expectation on this control met

    @property
    def shown(self) -> bool:
        """The library demonstrates the control both ways."""
        return bool(self.held_by) and bool(self.violated_by)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["held_by"] = list(self.held_by)
        data["violated_by"] = list(self.violated_by)
        data["shown"] = self.shown
        return data


def control_matrix(runs: list[ScenarioRun]) -> list[ControlRow]:
    rows = []
    for control, title in CONTROLS.items():
        held = tuple(r.scenario for r in runs if r.verdicts.get(control) == HELD)
        broken = tuple(r.scenario for r in runs if r.verdicts.get(control) == VIOLATED)
        ok = all(e.ok for r in runs for e in r.expectations if e.control == control)
        rows.append(ControlRow(control, title, held, broken, ok))
    return rows


@dataclass(frozen=True)
class Damage:
    patients: int
    resources: int
    exposure_s: float | None  # None: until revoked (an offline refresh token)
    refused: int  # requests the gateway refused

    @classmethod
    def of(cls, run: ScenarioRun) -> Damage:
        return cls(
            len(run.blast_patients),
            run.blast_resources,
            run.exposure.seconds,
            sum(1 for s in run.steps if s.refused),
        )


@dataclass(frozen=True)
class BlastRow:
    scenario: str
    kind: str
    caught: tuple[str, ...]  # controls that refused something with the controls on
    on: Damage
    off: Damage | None  # None: no baseline run

    @property
    def prevented_patients(self) -> int | None:
        return None if self.off is None else self.off.patients - self.on.patients

    def to_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "kind": self.kind,
            "caught": list(self.caught),
            "controls_on": asdict(self.on),
            "controls_off": asdict(self.off) if self.off else None,
            "patients_prevented": self.prevented_patients,
        }


def blast_radius(on: list[ScenarioRun], off: list[ScenarioRun] | None) -> list[BlastRow]:
    baseline = {r.scenario: r for r in off or ()}
    return [
        BlastRow(
            run.scenario,
            run.kind,
            tuple(sorted(run.caught)),
            Damage.of(run),
            Damage.of(baseline[run.scenario]) if run.scenario in baseline else None,
        )
        for run in on
    ]

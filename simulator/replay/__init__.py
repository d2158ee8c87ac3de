"""The functional replay: run one scenario once against the live gateway and judge it.

`replay(cfg, scenario, bindings, http)` obtains the scenario's token through its real SMART
flow, runs each step once in order, ends the session as the scenario says, measures the blast
radius and the exposure window, and compares the controls' verdicts with `scenario.expect`.

`replay` is imported lazily: the step interpreter (`simulator.steps`), which the engine drives,
reads answers with this package's modules, so importing one of them must not load the engine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from simulator.replay.model import ExpectationResult, ScenarioRun, StepResult

if TYPE_CHECKING:
    from simulator.replay.engine import replay

__all__ = ["ExpectationResult", "ScenarioRun", "StepResult", "replay"]


def __getattr__(name: str) -> Any:
    if name == "replay":
        from simulator.replay.engine import replay

        return replay
    raise AttributeError(f"module 'simulator.replay' has no attribute {name!r}")

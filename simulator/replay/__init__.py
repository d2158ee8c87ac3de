"""The functional replay: run one scenario once against the live gateway and judge it.

`replay(cfg, scenario, bindings, http)` obtains the scenario's token through its real SMART
flow, runs each step once in order, ends the session as the scenario says, measures the blast
radius and the exposure window, and compares the controls' verdicts with `scenario.expect`.
"""

from simulator.replay.engine import replay
from simulator.replay.model import ExpectationResult, ScenarioRun, StepResult

__all__ = ["ExpectationResult", "ScenarioRun", "StepResult", "replay"]

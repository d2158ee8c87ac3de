"""What an exercise's check requires, judged on the runs of its replay (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from simulator.exercises.model import Goal


@dataclass(frozen=True)
class GoalResult:
    goal: str  # what was required, in words
    ok: bool
    evidence: str  # what the run showed


def _works(run: Mapping[str, Any]) -> tuple[bool, str]:
    if run.get("auth_error"):
        return False, f"no token: {run['auth_error']}"
    own = [
        s for s in run.get("steps", []) if not s.get("probes") and "post-session" not in s["step"]
    ]
    failed = [
        f"{s['step']} → {s['status'] if s['status'] is not None else 'no answer'}"
        + (f" [{s['control']}]" if s.get("control") else "")
        for s in own
        if s["status"] is None or not 200 <= s["status"] < 300
    ]
    if failed:
        return False, "refused or failed: " + "; ".join(dict.fromkeys(failed))
    return True, f"{len(own)} request(s) of its own answered"


def _window(seconds: float | None) -> str:
    return "until revoked" if seconds is None else f"{seconds:.0f} s"


def judge_goal(goal: Goal, run: Mapping[str, Any] | None) -> GoalResult:
    name = goal.scenario
    if goal.control is not None:
        text = f"{name}: {goal.control} {goal.verdict}"
    elif goal.works:
        text = f"{name}: its own requests work"
    elif goal.max_exposure_s is not None:
        text = f"{name}: exposure window ≤ {goal.max_exposure_s:.0f} s"
    else:
        wanted = ", ".join(goal.alerts or ()) or "none"
        text = f"{name}: alerts raised: {wanted}"
    if run is None:
        return GoalResult(text, False, "the scenario did not run")
    if goal.control is not None:
        verdict = run["verdicts"].get(goal.control, "n/a")
        evidence = run.get("evidence", {}).get(goal.control, "")
        return GoalResult(text, verdict == goal.verdict, f"{verdict}: {evidence}".rstrip(": "))
    if goal.works is not None:
        ok, evidence = _works(run)
        return GoalResult(text, ok == goal.works, evidence)
    if goal.max_exposure_s is not None:
        seconds = run["exposure_window"]["seconds"]
        ok = seconds is not None and seconds <= goal.max_exposure_s
        note = run["exposure_window"].get("note", "")
        return GoalResult(text, ok, f"{_window(seconds)}{f' ({note})' if note else ''}")
    alerts = run.get("alerts", {})
    raised = sorted(set(alerts.get("raised", [])))
    if not alerts.get("checked"):
        return GoalResult(text, False, "the gateway's alerts could not be read")
    ok = raised == sorted(set(goal.alerts or ()))
    return GoalResult(text, ok, f"raised: {', '.join(raised) or 'none'}")


def judge_goals(goals: tuple[Goal, ...], runs: list[Mapping[str, Any]]) -> list[GoalResult]:
    by_name = {r["scenario"]: r for r in runs}
    return [judge_goal(g, by_name.get(g.scenario)) for g in goals]

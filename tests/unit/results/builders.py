"""Results built by hand (no server), shared by the report tests: replay runs with and without the
controls, a load run, the where-to-enforce placements and an issuance-cost measurement."""

from __future__ import annotations

from typing import Any

from simulator.authserver.issuance_cost import POLICY, REGISTERED, IssuanceCost
from simulator.replay.library import LibraryReplay
from simulator.replay.model import ExpectationResult, ExposureWindow, ScenarioRun, StepResult
from simulator.results import build_document


def scenario_run(
    name: str, verdicts: dict[str, str], patients: list[str], ok: bool = True
) -> ScenarioRun:
    run = ScenarioRun(name, "hostile", "app", "tenant-a", "standalone", {})
    run.steps = [
        StepResult("read", "GET", "u", 200, patients=tuple(patients), resources=("Patient/x",)),
        StepResult("probe", "GET", "u", 403, control="C08", probes=("C08",)),
    ]
    run.verdicts = verdicts
    run.expectations = [
        ExpectationResult(c, v, v if ok else "n/a", ok, "") for c, v in verdicts.items()
    ]
    run.caught = ["C08"]
    run.exposure = ExposureWindow(300.0, access_token_s=300.0, note="token lifetime")
    return run


def replays() -> tuple[LibraryReplay, LibraryReplay]:
    """The lab's replay (controls on) and its baseline (every preventive control off)."""
    on = LibraryReplay(
        "lab",
        {"C08": "enforce"},
        [
            scenario_run("good", {"C08": "held", "C05": "held"}, ["p1"]),
            scenario_run("bad", {"C08": "violated"}, ["p1"]),
        ],
    )
    off = LibraryReplay(
        "controls-off",
        {"C08": "off"},
        [
            scenario_run("good", {}, ["p1"]),
            scenario_run("bad", {}, ["p1", "p2", "p3"]),
        ],
    )
    return on, off


def document(
    on: LibraryReplay | None,
    off: LibraryReplay | None,
    load: dict | None = None,
    *,
    command: str = "run",
    **more: Any,
) -> dict:
    """A results document; `more` goes to build_document as it is (where, checks, audit, ...)."""
    return build_document(
        command=command,
        started=1_800_000_000.0,
        finished=1_800_000_090.0,
        lab={"gateway": "http://localhost:8080/fhir"},
        population={"population": {"patients": 20, "seed": 7}, "common_family": "Smith"},
        replay=on,
        baseline=off,
        load=load,
        **more,
    )


LOAD = {
    "users": 4,
    "pace": 5.0,
    "scenarios": [{"name": "scheduling-assistant", "weight": 1}],
    "seconds": 5,
    "workers": 0,
    "configs": [
        {
            "name": "off",
            "requests": 500,
            "rps": 100.0,
            "p50_ms": 8.1,
            "p95_ms": 12.0,
            "p99_ms": 20.0,
            "denied": 0,
            "failures": 0,
            "vs_off": None,
        },
        {
            "name": "all",
            "requests": 450,
            "rps": 90.0,
            "p50_ms": 9.0,
            "p95_ms": 13.0,
            "p99_ms": 21.0,
            "denied": 40,
            "failures": 0,
            "vs_off": {"rps_ratio": 0.9, "added_p50_ms": 0.9, "added_p99_ms": 1.0},
        },
    ],
}


def interval(estimate: float, low: float, high: float) -> dict[str, float]:
    return {"estimate": estimate, "low": low, "high": high}


def placement_run(
    scenario: str,
    verdict: str,
    patients: int,
    *,
    control: str = "C05",
    scope: str = "patient/*.read",
    caught: bool = False,
    auth_error: str | None = None,
) -> dict[str, Any]:
    """One scenario's run in a where-to-enforce placement, as results.json holds it."""
    return {
        "scenario": scenario,
        "auth_error": auth_error,
        "token": {"scope": scope, "lifetime_s": 300, "refresh_token": False, "offline": False},
        "scope_probe": None,
        "blast_radius": {"patients": patients, "resources": patients * 4},
        "verdicts": {control: verdict},
        "caught": [control] if caught else [],
    }


PLACEMENTS = {
    "gateway": [placement_run("wildcard-scheduler", "held", 1, caught=True)],
    "as": [placement_run("wildcard-scheduler", "violated", 1, scope="patient/Appointment.rs")],
    "both": [
        placement_run("wildcard-scheduler", "held", 1, scope="patient/Appointment.rs", caught=True),
        placement_run(
            "broad-clinical-assistant", "held", 0, control="C01", auth_error="invalid_scope"
        ),
    ],
}


def issuance_cost(added_ms: float) -> dict[str, Any]:
    """A measurement whose policy side is `added_ms` slower on every token."""
    result = IssuanceCost(rounds=4, per_block=10, warmup=1, order_seed=5)
    base = [[5.0 + 0.01 * i for i in range(10)] for _ in range(4)]
    result.times_ms = {
        REGISTERED: base,
        "registered-2": [[t + 0.001 for t in r] for r in base],
        POLICY: [[t + added_ms for t in r] for r in base],
    }
    result.seconds = {name: [0.1] * 4 for name in result.times_ms}
    result.expires_in = {REGISTERED: [300], "registered-2": [300], POLICY: [240]}
    return result.to_dict()

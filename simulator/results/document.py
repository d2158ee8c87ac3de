"""`results.json`: one document per run of `fhirlab run` or `fhirlab lab` (schema:
docs/reference/results.md). Built from what the run measured; nothing here talks to a server."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from simulator.replay.library import LibraryReplay
from simulator.replay.summary import blast_radius, control_matrix

RESULTS_SCHEMA_VERSION = 1


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def build_document(
    *,
    command: str,
    started: float,
    finished: float,
    lab: Mapping[str, Any],
    population: Mapping[str, Any] | None,
    replay: LibraryReplay | None,
    baseline: LibraryReplay | None = None,
    load: Mapping[str, Any] | None = None,
    checks: list[dict[str, Any]] | None = None,
    stack: Mapping[str, Any] | None = None,
    audit: Mapping[str, Any] | None = None,
    files: Mapping[str, Any] | None = None,
    where: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    runs = replay.runs if replay else []
    matrix = control_matrix(runs)
    blast = blast_radius(runs, baseline.runs if baseline else None)
    expectations = [e for r in runs for e in r.expectations]
    failed = [f"{r.scenario}: {e.control}" for r in runs for e in r.expectations if not e.ok]
    checks_failed = [c["id"] for c in checks or () if c.get("status") != "pass"]
    return {
        "schema_version": RESULTS_SCHEMA_VERSION,
        "command": command,
        "started_at": _iso(started),
        "finished_at": _iso(finished),
        "duration_s": round(finished - started, 1),
        "lab": dict(lab),
        "stack": dict(stack) if stack is not None else None,
        "checks": list(checks or []),
        "population": dict(population) if population is not None else None,
        "summary": {
            "ok": not failed and not checks_failed,
            "scenarios": len(runs),
            "expectations": len(expectations),
            "expectations_failed": failed,
            "checks_failed": checks_failed,
            "controls_shown": sum(1 for row in matrix if row.shown),
            "controls": len(matrix),
        },
        "control_matrix": [row.to_dict() for row in matrix],
        "blast_radius": [row.to_dict() for row in blast],
        "replay": replay.to_dict() if replay else None,
        "baseline": baseline.to_dict() if baseline else None,
        "load": dict(load) if load is not None else None,
        "where": dict(where) if where is not None else None,
        "audit": dict(audit) if audit is not None else None,
        "files": dict(files or {}),
    }

"""`report.md` and `report.html` from a results document (Jinja2 templates beside this module):
control matrix per scenario, blast radius on vs off, exposure windows, cost per control, alerts."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from gateway.controls import CONTROLS
from simulator.results.charts import blast_chart, cost_chart

TEMPLATES = Path(__file__).parent / "templates"
SYMBOL = {"held": "✓", "violated": "✗", "n/a": "·"}


def window(seconds: float | None) -> str:
    if seconds is None:
        return "until revoked"
    return f"{seconds:.0f} s"


def _grid(runs: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per scenario: the verdict per control, marked where it missed the expectation."""
    rows = []
    for run in runs:
        missed = {e["control"] for e in run["expectations"] if not e["ok"]}
        expected = {e["control"] for e in run["expectations"]}
        cells = []
        for control in CONTROLS:
            verdict = run["verdicts"].get(control, "n/a")
            cells.append(
                {
                    "verdict": verdict,
                    "symbol": SYMBOL.get(verdict, "?"),
                    "expected": control in expected,
                    "missed": control in missed,
                }
            )
        rows.append(
            {
                "scenario": run["scenario"],
                "kind": run["kind"],
                "cells": cells,
                "ok": run["expectations_ok"],
                "failed": sorted(missed),
            }
        )
    return rows


def _exposure(runs: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for run in runs:
        token, end, exposure = run["token"], run["session_end"], run["exposure_window"]
        rows.append(
            {
                "scenario": run["scenario"],
                "lifetime": f"{token['lifetime_s']} s" if token.get("lifetime_s") else "-",
                "refresh": "offline"
                if token.get("offline")
                else ("yes" if token.get("refresh_token") else "no"),
                "revoked": "yes" if end["revoked"] else "no",
                "replay": "-"
                if not end["replay_attempted"]
                else (
                    "accepted" if end["replay_accepted"] else f"refused ({end['replay_status']})"
                ),
                "window": window(exposure["seconds"]),
                "note": exposure["note"],
            }
        )
    return rows


def _alerts(
    runs: list[Mapping[str, Any]], baseline: list[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Expected detectors vs those raised with the controls on and with prevention off (where
    the expectation is judged)."""
    off = {r["scenario"]: r for r in baseline}
    rows = []
    for run in runs:
        judged = [e for e in run["expectations"] if e["control"] == "alerts"]
        want = [d.strip() for e in judged for d in e["expected"].split(",")]
        raised_on = run["alerts"]["raised"]
        base = off.get(run["scenario"])
        raised_off = base["alerts"]["raised"] if base else []
        if not want and not raised_on and not raised_off:
            continue
        rows.append(
            {
                "scenario": run["scenario"],
                "expected": want,
                "raised_on": raised_on,
                "raised_off": raised_off,
                "checked": bool(judged),
                "ok": all(e["ok"] for e in judged),
            }
        )
    return rows


def embed(path: Path | None) -> str | None:
    """A PNG as a data: URL, so the HTML report is one self-contained file."""
    if path is None:
        return None
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def view(document: Mapping[str, Any], charts: Mapping[str, Path | None]) -> dict[str, Any]:
    replay = document.get("replay") or {"runs": [], "controls": {}}
    runs = replay["runs"]
    baseline = (document.get("baseline") or {}).get("runs", [])
    load = document.get("load")
    return {
        "doc": document,
        "summary": document["summary"],
        "controls": list(CONTROLS),
        "matrix": document["control_matrix"],
        "grid": _grid(runs),
        "blast": document["blast_radius"],
        "has_baseline": document.get("baseline") is not None,
        "exposure": _exposure(runs),
        "alerts": _alerts(runs, baseline),
        "gateway_controls": replay.get("controls", {}),
        "load": load,
        "where": document.get("where"),
        "charts": {k: (p.name if p else None) for k, p in charts.items()},
        "embedded": {k: embed(p) for k, p in charts.items()},
    }


def environment(templates: Path = TEMPLATES) -> Environment:
    """The reports' Jinja2 environment (HTML autoescaped) with their number filters."""
    env = Environment(
        loader=FileSystemLoader(templates),
        autoescape=select_autoescape(["html", "html.j2"], default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["window"] = window
    env.filters["ms"] = lambda v: "-" if v is None else f"{v:.3f}"
    env.filters["signed_ms"] = lambda v: "-" if v is None else f"{v:+.3f}"
    env.filters["ratio"] = lambda v: "-" if v is None else f"{v:.2f}"
    env.filters["interval_ms"] = lambda i: (
        f"{i['estimate']:+.2f} [{i['low']:+.2f}, {i['high']:+.2f}]"
    )
    env.filters["interval_ratio"] = lambda i: (
        "-" if i is None else f"{i['estimate']:.2f} [{i['low']:.2f}, {i['high']:.2f}]"
    )
    return env


def render_reports(document: Mapping[str, Any], directory: Path) -> list[str]:
    """Write the charts, report.md and report.html into `directory`; the chart file names."""
    charts = {
        "blast": blast_chart(document["blast_radius"], directory / "blast-radius.png"),
        "cost": cost_chart(
            (document.get("load") or {}).get("configs") or [], directory / "cost.png"
        ),
    }
    env = environment()
    context = view(document, charts)
    for name in ("report.md", "report.html"):
        text = env.get_template(f"{name}.j2").render(**context)
        (directory / name).write_text(text, encoding="utf-8")
    return [p.name for p in charts.values() if p is not None]

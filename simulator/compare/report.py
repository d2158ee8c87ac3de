"""`compare.json`, `compare.md` and `compare.html` (templates beside this module), with a chart of
the patients each scenario reached on either side."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from simulator.compare.diff import Comparison
from simulator.results.charts import paired_bars
from simulator.results.report import embed, environment

TEMPLATES = Path(__file__).parent / "templates"
FILES = ("compare.json", "compare.md", "compare.html")
CHART = "compare-reach.png"


def reach_chart(comparison: Comparison, path: Path) -> Path | None:
    rows = [r for r in comparison.reach if r.patients_a or r.patients_b]
    if not rows:
        return None
    rows.sort(key=lambda r: (max(r.patients_a, r.patients_b), r.scenario))
    return paired_bars(
        [r.scenario for r in rows],
        (comparison.label_a, [r.patients_a for r in rows]),
        (comparison.label_b, [r.patients_b for r in rows]),
        "Patients reached per scenario",
        path,
    )


def write_comparison(
    comparison: Comparison, directory: Path, sides: dict[str, dict[str, Any]]
) -> Path:
    """Write the comparison's files into `directory`; `sides` says what A and B were."""
    directory.mkdir(parents=True, exist_ok=True)
    chart = reach_chart(comparison, directory / CHART)
    data = {**comparison.to_dict(), "sides": sides}
    (directory / FILES[0]).write_text(json.dumps(data, indent=2) + "\n", "utf-8")
    env = environment(TEMPLATES)
    context = {
        "c": data,
        "chart": chart.name if chart else None,
        "embedded": embed(chart),
        "changed_reach": [
            r
            for r in data["reach"]
            if r["patients_delta"] or r["resources_delta"] or r["exposure_a_s"] != r["exposure_b_s"]
        ],
        "changed_costs": [c for c in data["costs"] if c["measurable"]],
    }
    for name in FILES[1:]:
        text = env.get_template(f"{name}.j2").render(**context)
        (directory / name).write_text(text, encoding="utf-8")
    return directory

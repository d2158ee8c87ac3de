"""The report's charts (matplotlib, no display needed): blast radius on vs off, cost per control."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt

ON, OFF = "#2b6cb0", "#c53030"


def blast_chart(rows: Sequence[Mapping[str, Any]], path: Path) -> Path | None:
    """Patients reached per scenario, controls on vs off (horizontal bars)."""
    rows = [r for r in rows if r.get("controls_off")]
    if not rows:
        return None
    rows = sorted(rows, key=lambda r: (r["controls_off"]["patients"], r["scenario"]))
    return paired_bars(
        [r["scenario"] for r in rows],
        ("controls on", [r["controls_on"]["patients"] for r in rows]),
        ("controls off", [r["controls_off"]["patients"] for r in rows]),
        "Blast radius per scenario",
        path,
    )


def paired_bars(
    names: Sequence[str],
    first: tuple[str, Sequence[float]],
    second: tuple[str, Sequence[float]],
    title: str,
    path: Path,
    xlabel: str = "distinct patients whose data was returned",
) -> Path:
    """Two horizontal bars per name: `first` (blue, below) and `second` (red, above)."""
    fig, ax = plt.subplots(figsize=(8, 0.38 * len(names) + 1.4))
    ys = range(len(names))
    ax.barh([y + 0.2 for y in ys], second[1], height=0.4, color=OFF, label=second[0])
    ax.barh([y - 0.2 for y in ys], first[1], height=0.4, color=ON, label=first[0])
    ax.set_yticks(list(ys), names, fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


KIND_COLOURS = {"read": "#2b6cb0", "search": "#805ad5", "write": "#dd6b20", "refused": "#718096"}


def cost_chart(configs: Sequence[Mapping[str, Any]], path: Path) -> Path | None:
    """Added median latency of each controls configuration over the controls-off one: per
    request kind with its 95% interval when the run measured them, else one bar per
    configuration (results written before intervals were measured)."""
    if any(c.get("cost_vs_off") for c in configs):
        return _interval_chart(configs, path)
    key = "allowed_added_p50_ms"
    if not any((c.get("vs_off") or {}).get(key) is not None for c in configs):
        key = "added_p50_ms"
    rows = [c for c in configs if (c.get("vs_off") or {}).get(key) is not None]
    if not rows:
        return None
    names = [c["name"] for c in rows]
    added = [c["vs_off"][key] for c in rows]
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(rows) + 1.4))
    ys = range(len(rows))
    ax.barh(list(ys), added, color=ON)
    for y, c in zip(ys, rows, strict=True):
        ratio = c["vs_off"].get("rps_ratio")
        if ratio is not None:
            ax.annotate(
                f"{ratio:.2f}x rps",
                (max(added[y], 0), y),
                xytext=(4, -3),
                textcoords="offset points",
                fontsize=7,
            )
    ax.set_yticks(list(ys), names, fontsize=8)
    ax.axvline(0, color="black", linewidth=0.6)
    ax.set_xlabel(
        "added median latency vs controls off, on the requests both served (ms)"
        if key == "allowed_added_p50_ms"
        else "added median latency vs controls off (ms)"
    )
    ax.set_title("Cost per control under load")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _interval_chart(configs: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """One row per configuration, one marker per request kind at its added median, with the
    95% interval as a bar; the noise floor (`off-2`) is a row like the others, and with `direct`
    in the run, `off` and `all` against it (the whole gateway) are two more."""
    rows = [(c["name"], c["cost_vs_off"]) for c in configs if c.get("cost_vs_off")]
    rows += [
        (f"{c['name']} vs direct", c["cost_vs_direct"])
        for c in configs
        if c["name"] in ("off", "all") and c.get("cost_vs_direct")
    ]
    order = list(KIND_COLOURS)
    found_kinds = {k["kind"] for _, costs in rows for k in costs}
    kinds = [k for k in order if k in found_kinds] + sorted(found_kinds - set(order))
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(rows) + 1.6))
    step = 0.6 / max(1, len(kinds))
    for n, kind in enumerate(kinds):
        ys, xs, lows, highs = [], [], [], []
        for y, (_, costs) in enumerate(rows):
            found = next((k for k in costs if k["kind"] == kind), None)
            if found is None:
                continue
            p50 = found["added_p50_ms"]
            ys.append(y - 0.3 + step * (n + 0.5))
            xs.append(p50["estimate"])
            lows.append(p50["estimate"] - p50["low"])
            highs.append(p50["high"] - p50["estimate"])
        ax.errorbar(
            xs, ys, xerr=[lows, highs], fmt="o", markersize=4, capsize=2, linewidth=1,
            color=KIND_COLOURS.get(kind, "#2d3748"), label=kind,
        )  # fmt: skip
    ax.set_yticks(range(len(rows)), [label for label, _ in rows], fontsize=8)
    ax.invert_yaxis()
    ax.axvline(0, color="black", linewidth=0.6)
    ax.set_xlabel(
        "added median latency vs off (or direct HAPI), per kind of request (ms; bars: 95%)"
    )
    ax.set_title("Cost per control under load (off-2: the run's noise floor)")
    ax.legend(loc="best", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

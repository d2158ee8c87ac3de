"""The load run as a Rich table: one row per configuration, compared with `off`."""

from __future__ import annotations

from rich.table import Table

from simulator.load.result import LoadResult
from simulator.load.stats import compared, ratio


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _signed(value: float | None) -> str:
    return "-" if value is None else f"{value:+.3f}"


def load_table(result: LoadResult) -> Table:
    table = Table(
        title=f"load: {result.users} users, {result.seconds:g} s per configuration"
        + (f", {result.workers} workers" if result.workers else "")
    )
    table.add_column("config")
    for column in ("requests", "rps", "vs off", "p50 ms", "+p50", "p99 ms", "+p99"):
        table.add_column(column, justify="right")
    table.add_column("denied", justify="right")
    table.add_column("failures", justify="right")
    base = result.baseline.totals if result.baseline else None
    for config in result.configs:
        t = config.totals
        rel = ratio(t.rps, base.rps) if base else None
        failures = f"[red]{t.failures}[/]" if t.failures else "0"
        table.add_row(
            config.name,
            str(t.requests),
            "-" if t.rps is None else f"{t.rps:.1f}",
            "-" if rel is None else f"{rel:.2f}",
            _ms(t.p50_ms),
            _signed(compared(t.p50_ms, base.p50_ms) if base else None),
            _ms(t.p99_ms),
            _signed(compared(t.p99_ms, base.p99_ms) if base else None),
            str(t.denied),
            failures,
        )
    return table

"""The load run as a Rich table: one row per configuration, compared with `off`."""

from __future__ import annotations

from rich import box
from rich.table import Table

from simulator.load.result import LoadResult
from simulator.load.stats import compared, ratio


def _number(value: float | None, form: str) -> str:
    return "-" if value is None else format(value, form)


def load_table(result: LoadResult) -> Table:
    """config, rps, ratio to off, p50, added p50, p99, added p99, denied, failed."""
    title = f"load: {result.users} users, {result.seconds:g} s per configuration"
    if result.workers:
        title += f", {result.workers} workers"
    table = Table(title=title, box=box.SIMPLE_HEAD)
    table.add_column("config")
    for column in ("rps", "×off", "p50 ms", "+p50", "p99 ms", "+p99", "denied", "failed"):
        table.add_column(column, justify="right", no_wrap=True)
    base = result.baseline.totals if result.baseline else None
    for config in result.configs:
        t = config.totals
        table.add_row(
            config.name,
            _number(t.rps, ".1f"),
            _number(ratio(t.rps, base.rps) if base else None, ".2f"),
            _number(t.p50_ms, ".3f"),
            _number(compared(t.p50_ms, base.p50_ms) if base else None, "+.3f"),
            _number(t.p99_ms, ".3f"),
            _number(compared(t.p99_ms, base.p99_ms) if base else None, "+.3f"),
            str(t.denied),
            f"[red]{t.failures}[/]" if t.failures else "0",
        )
    return table

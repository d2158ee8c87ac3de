"""The load run as a Rich table: one row per configuration, compared with `off`."""

from __future__ import annotations

from rich import box
from rich.table import Table

from simulator.load.result import LoadResult
from simulator.load.stats import allowed_added_p50, compared, ratio


def _number(value: float | None, form: str) -> str:
    return "-" if value is None else format(value, form)


def load_table(result: LoadResult) -> Table:
    """config, rps, ratio to off, p50, added p50 (all requests; on the requests both served),
    p99, denied, failed; load.json has every figure (added p99 too) with 3 decimals."""
    title = f"load: {result.users} users, {result.seconds:g} s per configuration"
    if result.rounds > 1:
        title += f" in {result.rounds} interleaved rounds"
    if result.workers:
        title += f", {result.workers} workers"
    caption = "times in ms; +p50 ok: on the requests both this and off served"
    table = Table(title=title, caption=caption, box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("config", no_wrap=True)
    for column in ("rps", "×off", "p50", "+p50", "+p50 ok", "p99", "denied", "failed"):
        table.add_column(column, justify="right", no_wrap=True)
    base = result.baseline.totals if result.baseline else None
    for config in result.configs:
        t = config.totals
        same = allowed_added_p50(t.by_request, base.by_request)[1] if base else None
        table.add_row(
            config.name,
            _number(t.rps, ".1f"),
            _number(ratio(t.rps, base.rps) if base else None, ".2f"),
            _number(t.p50_ms, ".3f"),
            _number(compared(t.p50_ms, base.p50_ms) if base else None, "+.3f"),
            _number(same, "+.3f"),
            _number(t.p99_ms, ".3f"),
            str(t.denied),
            f"[red]{t.failures}[/]" if t.failures else "0",
        )
    return table

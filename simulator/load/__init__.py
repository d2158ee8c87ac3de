"""`fhirlab load`: the scenario library under Locust load, once per gateway configuration of the
controls matrix, so that the cost of each control is measured end to end (docs/explanation/load.md).

    from simulator.load import LoadOptions, parse_matrix, run_matrix
    result = run_matrix(cfg, LoadOptions(seconds=5, matrix=tuple(parse_matrix("off,all"))), run_dir)
    result.to_dict()  # the load.json document

The names are imported lazily: the Locust process (`simulator.load.locust_process`) imports this
package before gevent patches the standard library, so nothing here may import httpx or ssl.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from simulator.load.matrix import MATRIX_NAMES, Configuration, parse_matrix
    from simulator.load.progress import LoadProgress, QuietProgress, RichProgress
    from simulator.load.result import ConfigResult, LoadResult
    from simulator.load.runner import LoadOptions, run_matrix
    from simulator.load.table import load_table

_EXPORTS = {
    "MATRIX_NAMES": "simulator.load.matrix",
    "Configuration": "simulator.load.matrix",
    "parse_matrix": "simulator.load.matrix",
    "LoadProgress": "simulator.load.progress",
    "QuietProgress": "simulator.load.progress",
    "RichProgress": "simulator.load.progress",
    "ConfigResult": "simulator.load.result",
    "LoadResult": "simulator.load.result",
    "LoadOptions": "simulator.load.runner",
    "run_matrix": "simulator.load.runner",
    "load_table": "simulator.load.table",
}
__all__ = [
    "MATRIX_NAMES",
    "ConfigResult",
    "Configuration",
    "LoadOptions",
    "LoadProgress",
    "LoadResult",
    "QuietProgress",
    "RichProgress",
    "load_table",
    "parse_matrix",
    "run_matrix",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'simulator.load' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)

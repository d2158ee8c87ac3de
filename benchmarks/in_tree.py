"""A probe run inside a checkout of the project: how the in-process benchmarks compare trees."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from simulator.stack.extra_gateway import source_env


def run_probe(tree: Path, probe: str, *args: str) -> dict[str, Any]:
    """Run `probe` (Python source) in a fresh interpreter inside `tree`, importing `tree`'s
    packages (`source_env`, as `gateway_cost.py --before` runs a checkout's gateway), and
    return the JSON object on the last line it prints; exits with its error output if it
    fails."""
    done = subprocess.run(
        [sys.executable, "-c", probe, *args],
        cwd=tree, env=source_env(tree),
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"the probe failed in {tree}:\n{done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result

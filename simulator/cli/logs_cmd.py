"""`fhirlab logs [SERVICE]`: the last lines of a service's log, or follow it."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from labcore.config import load_config
from labcore.errors import LabError
from simulator.cli.console import out
from simulator.stack.process import tail
from simulator.stack.services import SERVICES


def logs(
    service: Annotated[str, typer.Argument(help=f"one of {', '.join(SERVICES)}")] = "gateway",
    lines: Annotated[int, typer.Option("--lines", "-n", help="how many lines")] = 50,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="keep printing")] = False,
) -> None:
    """Print the end of a service's log file."""
    if service not in SERVICES:
        raise LabError(f"unknown service {service!r}", f"choose from {', '.join(SERVICES)}")
    path = load_config().log_dir / f"{service}.log"
    if not path.exists():
        raise LabError(f"no log for {service} yet ({path})", "start it with `fhirlab up`")
    out.print(tail(path, lines), markup=False, highlight=False, soft_wrap=True)
    if follow:
        with path.open("rb") as fh:
            fh.seek(0, 2)
            while True:
                chunk = fh.read()
                if chunk:
                    out.print(chunk.decode(errors="replace"), end="", markup=False, highlight=False)
                else:
                    time.sleep(0.5)

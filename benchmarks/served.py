"""Start a server process for a benchmark, wait until its FHIR base answers, stop it after."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from labcore.errors import LabError


@contextmanager
def served(
    cmd: list[str], base: str, log: Path, what: str, timeout_s: float = 30.0
) -> Iterator[subprocess.Popen[bytes]]:
    """Run `cmd` (its output to `log`) until `base`/metadata answers 200, then yield the
    process; terminate it on exit (kill it if it does not stop within 10 s). A process that
    exits or does not answer in `timeout_s` is a LabError naming `what` and the log."""
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise LabError(f"{what} did not start; see {log}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(base + "/metadata", timeout=5).status_code == 200:
                    break
            time.sleep(0.1)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()

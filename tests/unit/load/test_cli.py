"""`fhirlab load` refuses bad options with a clear message and exit 1, before touching a lab."""

from __future__ import annotations

import subprocess
import sys

import pytest


def fhirlab_load(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "simulator", "load", *args],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--matrix", "off,C07"], "configuration control"),
        (["--matrix", "fast"], "unknown configuration"),
        (["--seconds", "0"], "--seconds 0 is out of range"),
        (["--workers", "99"], "--workers 99 is out of range"),
        (["--pace", "-1"], "--pace -1 must not be negative"),
        (["no-such-scenario"], "unknown scenario"),
    ],
)
def test_bad_options_exit_1_with_a_message(args: list[str], message: str) -> None:
    done = fhirlab_load(*args)
    assert done.returncode == 1, done.stderr
    text = " ".join(done.stderr.split())
    assert message in text
    assert "Traceback" not in done.stderr

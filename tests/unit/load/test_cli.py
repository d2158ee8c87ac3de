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
        (["--rounds", "0"], "--rounds 0 is out of range"),
        (["--seconds", "1", "--rounds", "4"], "makes slices of 0.25 s"),
        (["--warmup", "-1"], "--warmup -1 is out of range"),
        (["no-such-scenario"], "unknown scenario"),
    ],
)
def test_bad_options_exit_1_with_a_message(args: list[str], message: str) -> None:
    done = fhirlab_load(*args)
    assert done.returncode == 1, done.stderr
    text = " ".join(done.stderr.split())
    assert message in text
    assert "Traceback" not in done.stderr

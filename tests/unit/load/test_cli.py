"""`fhirlab load` refuses bad options with a clear message and exit 1, before touching a lab."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

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
        (["--ui", "--matrix", "off,all"], "--ui watches one gateway; --matrix off,all names 2"),
        (["--ui", "--matrix", "direct"], "names direct (HAPI FHIR, no gateway)"),
        (["--ui", "--matrix", "C01", "--enforce-at", "as"], "is off again"),
        (["--ui", "--workers", "2"], "--ui runs one local Locust process"),
        (["--ui", "--ui-port", "0"], "--ui-port 0 is not a port"),
    ],
)
def test_bad_options_exit_1_with_a_message(args: list[str], message: str) -> None:
    done = fhirlab_load(*args)
    assert done.returncode == 1, done.stderr
    text = " ".join(done.stderr.split())
    assert message in text
    assert "Traceback" not in done.stderr


def test_ui_refuses_a_busy_port_before_writing_anything(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = fhirlab_load("--ui", "--ui-port", str(port), "--results", str(tmp_path))
    assert done.returncode == 1, done.stderr
    text = " ".join(done.stderr.split())
    assert f"port {port} on 127.0.0.1 is busy" in text and "--ui-port" in text
    assert not list(tmp_path.iterdir())

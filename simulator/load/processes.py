"""Start the Locust processes of one configuration, follow their progress, and always stop them.

Local mode is one process; `workers` N is a master plus N worker processes. They run in their
own sessions, so a Ctrl-C in the terminal reaches only the command, which then stops them:
SIGTERM (the Locust process stops its users and keeps what it measured), then SIGKILL.
"""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from labcore.errors import LabError
from simulator.load.spec import LoadSpec

MODULE = "simulator.load.locust_process"
START_BUDGET_S = 60.0  # imports, the library, the workers connecting (logins: LoadSpec)
STOP_GRACE_S = 20.0


def _command(spec_path: Path, role: str) -> list[str]:
    return [sys.executable, "-m", MODULE, str(spec_path), role]


def _follow(stream: IO[bytes], lines: queue.Queue[dict[str, Any]]) -> None:
    for raw in stream:
        try:
            item = json.loads(raw)
        except ValueError:
            continue
        if isinstance(item, dict):
            lines.put(item)


@contextmanager
def locust_processes(
    spec: LoadSpec, spec_path: Path, directory: Path, env: dict[str, str]
) -> Iterator[tuple[subprocess.Popen[bytes], queue.Queue[dict[str, Any]]]]:
    """The main (local or master) Locust process and its progress lines; workers beside it."""
    role = "master" if spec.workers else "local"
    procs: list[subprocess.Popen[bytes]] = []
    logs: list[IO[bytes]] = []
    lines: queue.Queue[dict[str, Any]] = queue.Queue()
    try:
        main_log = (directory / "locust.log").open("ab")
        logs.append(main_log)
        main = subprocess.Popen(
            _command(spec_path, role), stdout=subprocess.PIPE, stderr=main_log, env=env,
            start_new_session=True,
        )  # fmt: skip
        procs.append(main)
        assert main.stdout is not None
        threading.Thread(target=_follow, args=(main.stdout, lines), daemon=True).start()
        for index in range(spec.workers):
            worker_log = (directory / f"locust-worker-{index + 1}.log").open("ab")
            logs.append(worker_log)
            worker = subprocess.Popen(
                _command(spec_path, "worker"), stdout=worker_log, stderr=subprocess.STDOUT,
                env=env, start_new_session=True,
            )  # fmt: skip
            procs.append(worker)
        yield main, lines
    finally:
        stop_all(procs)
        for handle in logs:
            handle.close()


def stop_all(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM to every live process, then SIGKILL to what is left after the grace period."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_for(
    main: subprocess.Popen[bytes],
    lines: queue.Queue[dict[str, Any]],
    budget_s: float,
    on_status: Callable[[dict[str, Any]], None],
) -> int:
    """Wait for the main Locust process to finish, passing its progress lines on; past the
    budget, ask it to stop (it keeps what it measured); its exit code."""
    started = time.monotonic()
    asked_to_stop = False
    while True:
        try:
            status = lines.get(timeout=0.25)
            on_status(status)
        except queue.Empty:
            pass
        code = main.poll()
        if code is not None:
            _pass_on_rest(lines, on_status)
            return code
        if not asked_to_stop and time.monotonic() - started > budget_s:
            main.send_signal(signal.SIGTERM)
            asked_to_stop = True
        if asked_to_stop and time.monotonic() - started > budget_s + STOP_GRACE_S:
            main.kill()
            main.wait()
            raise LabError(
                f"the Locust process did not finish within {budget_s + STOP_GRACE_S:.0f} s",
                "see locust.log in the configuration's directory",
            )


def _pass_on_rest(
    lines: queue.Queue[dict[str, Any]], on_status: Callable[[dict[str, Any]], None]
) -> None:
    """The progress lines still on their way once the process has exited."""
    while True:
        try:
            on_status(lines.get(timeout=0.5))
        except queue.Empty:
            return

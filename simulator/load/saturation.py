"""Nothing lost under load: a gateway with every control on, driven at saturation, keeps one audit
record per request it answered, a chain that verifies, and no 5xx, also when it is stopped
gracefully in the middle of the load.

    result = saturate(cfg, directory, clients=8, seconds=60, stop_after=None)
    result.problems()   # [] when nothing was lost

One extra gateway (`simulator/stack/extra_gateway.py`: every run-time control enforced, the rate
limiter off so that nothing is refused for speed) is driven by `clients` concurrent keep-alive
clients, each sending reads by id and 20-result searches in turn with one patient-context token,
as fast as they are answered (a closed loop: the machine saturates). With `stop_after`, the
gateway gets SIGTERM that many seconds in, while the clients keep sending: it stops accepting,
answers what it holds, flushes its audit log and exits; the clients' later requests fail to
connect (counted apart, never sent to anyone). Then the count of answers the clients received must
equal the audit log's request records, the hash chain must verify from its first line to its
last, and no answer may be a 5xx.

The load comes from the gateway's own light HTTP/1.1 client (`gateway/upstream_client.py`, asyncio
and httptools), not Locust: on two shared cores a heavier client takes the CPU the gateway needs
to reach saturation (`benchmarks/gateway_cost.py` measured httpx at several times the CPU per
request).
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.audit import ChainReport, verify_chain
from gateway.controls import Mode
from gateway.recorder import AUDIT_FILE
from gateway.upstream_client import UpstreamClient, UpstreamError
from labcore.config import LabConfig
from labcore.errors import LabError
from seed.lab import read_seed_record
from seed.users import DEMO_PASSWORD
from simulator.authserver.apply import apply_profiles
from simulator.smart.auth import PublicClient
from simulator.smart.client import SmartClient
from simulator.smart.discovery import discover_issuer
from simulator.stack.extra_gateway import extra_gateway, modes_all

CLIENT = "triage-chatbot"
TENANT = "tenant-a"
PATIENT = "pat-a-000000"  # the first seeded patient of tenant-a, who logs in as themselves
SCOPE = "openid launch/patient patient/Patient.rs patient/Observation.rs"
REDIRECT_URI = "http://localhost:9999/callback"
STOP_WAIT_S = 30.0  # how long a stopped gateway may take to answer what it holds and exit
# uvicorn, once it has shut down gracefully, raises the signal it caught again: the process
# ends "killed by SIGTERM" (-15) after a clean stop, or 0
GRACEFUL_EXITS = (0, -signal.SIGTERM)
SEARCH_COUNT = 20

Progress = Callable[[float, int], None]  # (seconds so far, answers so far)


@dataclass
class SaturationResult:
    clients: int
    seconds: float  # from the first request to the last answer (or the gateway's exit)
    answers: Counter[int] = field(default_factory=Counter)  # HTTP status -> answers received
    by_kind: Counter[str] = field(default_factory=Counter)  # read / search -> answers
    unsent: int = 0  # requests that found no gateway to connect to (after a stop)
    broken: int = 0  # requests sent whose answer never came (the connection dropped)
    stopped_after_s: float | None = None  # when SIGTERM was sent
    exit_code: int | None = None  # the gateway's, after a stop
    audit_records: int = 0  # request records in its audit log
    chain: ChainReport | None = None

    @property
    def answered(self) -> int:
        return sum(self.answers.values())

    @property
    def rate(self) -> float:
        return self.answered / self.seconds if self.seconds else 0.0

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.answers.items() if status >= 500)

    def problems(self) -> list[str]:
        """What was lost or broken; [] when nothing was."""
        found = []
        if self.audit_records != self.answered:
            found.append(f"{self.answered} answers received but {self.audit_records} audit records")
        if self.chain is None or not self.chain.ok:
            why = self.chain.reason if self.chain is not None else "not verified"
            found.append(f"the audit chain does not verify: {why}")
        if self.server_errors:
            found.append(f"{self.server_errors} answers were 5xx: {dict(self.answers)}")
        if self.broken:
            found.append(f"{self.broken} requests were sent but never answered")
        if self.stopped_after_s is not None and self.exit_code not in GRACEFUL_EXITS:
            found.append(f"the gateway exited with {self.exit_code} after SIGTERM")
        return found

    def to_dict(self) -> dict[str, Any]:
        return {
            "clients": self.clients,
            "seconds": round(self.seconds, 3),
            "answered": self.answered,
            "rate": round(self.rate, 1),
            "answers": {str(k): v for k, v in sorted(self.answers.items())},
            "by_kind": dict(self.by_kind),
            "unsent": self.unsent,
            "broken": self.broken,
            "stopped_after_s": self.stopped_after_s,
            "exit_code": self.exit_code,
            "audit_records": self.audit_records,
            "chain": None
            if self.chain is None
            else {"ok": self.chain.ok, "records": self.chain.records, "reason": self.chain.reason},
            "problems": self.problems(),
        }


def request_records(path: Path) -> int:
    """The audit log's records of kind `request` (one per request the gateway answered)."""
    if not path.exists():
        return 0
    with path.open(encoding="utf-8") as handle:
        return sum(1 for line in handle if json.loads(line).get("kind") == "request")


async def drive(
    base: str,
    token: str,
    patient: str,
    result: SaturationResult,
    seconds: float,
    stop: Callable[[], None] | None,
    stop_after: float | None,
    progress: Progress | None,
) -> None:
    """`result.clients` workers sending reads and searches in turn until `seconds` have passed
    (or, after `stop`, until the gateway is gone)."""
    paths = [
        ("read", f"/Patient/{patient}".encode()),
        ("search", f"/Observation?patient={patient}&_count={SEARCH_COUNT}".encode()),
    ]
    headers = [
        (b"authorization", f"Bearer {token}".encode()),
        (b"accept", b"application/fhir+json"),
    ]
    client = UpstreamClient(base, timeout_s=60, max_connections=result.clients)
    started = time.perf_counter()
    deadline = started + seconds
    gone = asyncio.Event()

    async def worker(offset: int) -> None:
        turn = offset
        while time.perf_counter() < deadline and not gone.is_set():
            kind, path = paths[turn % len(paths)]
            turn += 1
            try:
                response = await client.request("GET", path, headers)
                await response.read()
            except UpstreamError as exc:
                if exc.kind != "ConnectError":
                    result.broken += 1
                    continue
                result.unsent += 1
                if result.stopped_after_s is not None:
                    gone.set()  # stopped: no gateway to send to any more
                    return
                await asyncio.sleep(0.01)
                continue
            result.answers[response.status] += 1
            result.by_kind[kind] += 1

    async def stopper() -> None:
        if stop is None or stop_after is None:
            return
        await asyncio.sleep(stop_after)
        result.stopped_after_s = round(time.perf_counter() - started, 3)
        stop()

    async def reporter() -> None:
        while progress is not None and not gone.is_set():
            await asyncio.sleep(1.0)
            progress(time.perf_counter() - started, result.answered)

    ticking = asyncio.create_task(reporter())
    try:
        await asyncio.gather(stopper(), *(worker(k) for k in range(result.clients)))
    finally:
        result.seconds = time.perf_counter() - started
        ticking.cancel()
        await client.aclose()


def patient_token(cfg: LabConfig) -> tuple[str, str]:
    """(access token, patient id): `triage-chatbot` launched standalone by the first seeded
    patient of tenant-a, as `benchmarks/gateway_cost.py` does (patient/Patient.rs and
    patient/Observation.rs, in the patient's context)."""
    if read_seed_record(cfg) is None:
        raise LabError("the lab is not seeded", "run `fhirlab seed` first")
    apply_profiles(cfg, [CLIENT])
    server = discover_issuer(cfg.issuer(TENANT))
    with SmartClient(server, PublicClient(CLIENT), REDIRECT_URI) as client:
        token = client.authorization_code(PATIENT, DEMO_PASSWORD, SCOPE)
    return token.access_token, PATIENT


def saturate(
    cfg: LabConfig,
    directory: Path,
    token: str,
    patient: str,
    *,
    clients: int = 8,
    seconds: float = 60.0,
    stop_after: float | None = None,
    progress: Progress | None = None,
) -> SaturationResult:
    """Drive a fresh gateway with every control on at saturation (see the module's docstring);
    its files go under `directory`. `token`: a patient-context access token for `patient`."""
    if clients < 1 or seconds <= 0:
        raise LabError("a saturation run needs at least one client and a positive duration")
    if stop_after is not None and not 0 < stop_after < seconds:
        raise LabError(f"stop_after {stop_after:g} s must fall within the run's {seconds:g} s")
    result = SaturationResult(clients=clients, seconds=0.0)
    modes = modes_all(Mode.ENFORCE)
    with extra_gateway(cfg, "saturation", directory, modes, rate_limit=False) as gateway:
        process = gateway.process

        def stop() -> None:
            process.send_signal(signal.SIGTERM)

        asyncio.run(
            drive(gateway.base_url, token, patient, result, seconds, stop, stop_after, progress)
        )
        if stop_after is not None:
            try:
                result.exit_code = process.wait(timeout=STOP_WAIT_S)
            except subprocess.TimeoutExpired:
                result.exit_code = None
    # the gateway has stopped gracefully (here or on leaving `extra_gateway`): its log is whole
    assert gateway.audit_dir is not None
    audit = gateway.audit_dir / AUDIT_FILE
    result.audit_records = request_records(audit)
    result.chain = verify_chain(audit)
    return result

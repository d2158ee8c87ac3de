"""What each gateway control costs: the same request mix against direct HAPI, the bare proxy,
each control alone and all controls, side by side in one run.

    .venv/bin/python benchmarks/gateway_cost.py [--seconds 10] [--rounds 5] [--concurrency 8]

Needs the running lab (`fhirlab up`, seeded: `fhirlab seed`). Starts one extra gateway process per
configuration (on free ports, same HAPI, same Keycloak), drives each with a patient-context token
of the `triage-chatbot` client (standalone launch as the first seeded patient) for the same total
time, in interleaved rounds so that drift falls on every configuration alike, and prints
throughput and latency (median, p99, in ms with sub-millisecond precision) and the ratios to
direct HAPI. The load generator runs on the same machine: compare ratios, not absolutes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml

from gateway.policy import RUNTIME_CONTROLS, load_policy
from seed.lab import read_seed_record
from seed.users import DEMO_PASSWORD
from simulator.authserver.apply import apply_profiles
from simulator.smart.auth import PublicClient
from simulator.smart.client import SmartClient
from simulator.smart.discovery import discover_issuer
from simulator.stack.config import LabConfig, load_config

CLIENT = "triage-chatbot"
SCOPE = "openid launch/patient patient/Patient.rs patient/Observation.rs"


@dataclass
class Result:
    name: str
    latencies_ms: list[float]
    errors: int
    seconds: float

    @property
    def rate(self) -> float:
        return len(self.latencies_ms) / self.seconds

    def pct(self, p: float) -> float:
        data = sorted(self.latencies_ms)
        return data[min(len(data) - 1, int(p * len(data)))] if data else float("nan")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


SLOW_SERVER = ["--loop", "asyncio", "--http", "h11"]  # uvicorn without uvloop/httptools


def configurations() -> dict[str, tuple[dict[str, str] | None, list[str]]]:
    """name -> (control modes (None: the bare pass-through proxy), extra gateway arguments)."""
    off = {c: "off" for c in RUNTIME_CONTROLS}
    every = {c: "enforce" for c in RUNTIME_CONTROLS}
    configs: dict[str, tuple[dict[str, str] | None, list[str]]] = {
        "proxy only": (None, []),
        "token only": (dict(off), []),
    }
    for control in RUNTIME_CONTROLS:
        configs[f"token + {control}"] = ({**off, control: "enforce"}, [])
    configs["all controls"] = (every, [])
    configs["all, asyncio+h11"] = (every, SLOW_SERVER)
    return configs


def start_gateway(
    cfg: LabConfig, modes: dict[str, str] | None, tmp: Path, extra: list[str]
) -> tuple[str, subprocess.Popen[bytes]]:
    port = free_port()
    cmd = [sys.executable, "-m", "gateway", "--port", str(port), "--upstream", cfg.hapi_base_url]
    cmd += extra
    if modes is not None:
        policy = load_policy().model_dump(mode="json")
        policy["controls"] = modes
        policy["rate_limit"]["enabled"] = False
        path = tmp / f"policy-{port}.yaml"
        path.write_text(yaml.safe_dump(policy))
        cmd += [
            "--keycloak",
            cfg.keycloak_url,
            "--public-base",
            cfg.gateway_base_url,
            "--policy",
            str(path),
            "--audit-dir",
            str(tmp / f"audit-{port}"),
        ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            if httpx.get(f"{base}/_gateway/health", timeout=1).status_code == 200:
                return f"{base}/fhir", proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"gateway on port {port} did not start")


async def drive(
    name: str, base: str, token: str, patient: str, seconds: float, concurrency: int
) -> Result:
    paths = [f"/Patient/{patient}", f"/Observation?subject=Patient/{patient}&_count=10"]
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/fhir+json"}
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=30) as http:
        for path in paths:  # warm up connections, JWKS, caches
            await http.get(base + path)
        deadline = time.perf_counter() + seconds

        async def worker(offset: int) -> None:
            nonlocal errors
            i = offset
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                resp = await http.get(base + paths[i % len(paths)])
                if resp.status_code == 200:
                    latencies.append((time.perf_counter() - t0) * 1000)
                else:
                    errors += 1
                i += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(k) for k in range(concurrency)))
        return Result(name, latencies, errors, time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0, help="per configuration, in all")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved slices per config")
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    cfg = load_config()
    if read_seed_record(cfg) is None:
        raise SystemExit("the lab is not seeded: run `fhirlab seed` first")
    apply_profiles(cfg, [CLIENT])
    patient = "pat-a-000000"
    server = discover_issuer(cfg.issuer("tenant-a"))
    with SmartClient(server, PublicClient(CLIENT), "http://localhost:9999/callback") as client:
        token = client.authorization_code(patient, DEMO_PASSWORD, SCOPE).access_token
    names = ["direct HAPI", *configurations()]
    results = {name: Result(name, [], 0, 0.0) for name in names}
    slice_s = args.seconds / args.rounds
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="fhirlab-gwcost-") as tmp:
        bases = {"direct HAPI": cfg.hapi_base_url}
        try:
            for name, (modes, extra) in configurations().items():
                bases[name], proc = start_gateway(cfg, modes, Path(tmp), extra)
                procs.append(proc)
            # interleaved rounds, rotating the order: drift (HAPI warming up, caches, other
            # load on the machine) falls on every configuration alike
            for round_no in range(args.rounds):
                order = names[round_no % len(names) :] + names[: round_no % len(names)]
                for name in order:
                    part = asyncio.run(
                        drive(name, bases[name], token, patient, slice_s, args.concurrency)
                    )
                    total = results[name]
                    total.latencies_ms.extend(part.latencies_ms)
                    total.errors += part.errors
                    total.seconds += part.seconds
                print(f"  round {round_no + 1}/{args.rounds} done", file=sys.stderr)
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(timeout=15)
    direct = results["direct HAPI"]
    print(
        f"\n{args.concurrency} concurrent clients, {args.seconds:.0f} s per configuration in "
        f"{args.rounds} interleaved rounds, load average {os.getloadavg()[0]:.1f}; "
        "mix: Patient read + Observation search"
    )
    print(
        f"{'configuration':<18}{'req/s':>9}{'ratio':>8}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'+p50 ms':>9}{'+p99 ms':>9}{'errors':>8}"
    )
    for r in results.values():
        print(
            f"{r.name:<18}{r.rate:9.1f}{r.rate / direct.rate:8.2f}{r.pct(0.5):9.2f}"
            f"{r.pct(0.99):9.2f}{r.pct(0.5) - direct.pct(0.5):9.2f}"
            f"{r.pct(0.99) - direct.pct(0.99):9.2f}{r.errors:8d}"
        )


if __name__ == "__main__":
    main()

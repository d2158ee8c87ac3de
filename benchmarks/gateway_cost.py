"""What each gateway control costs: the same request mix against direct HAPI, the bare proxy,
each control alone and all controls, side by side in one run.

    .venv/bin/python benchmarks/gateway_cost.py [--seconds 10] [--concurrency 8]

Needs the running lab (`fhirlab up`, seeded: `fhirlab seed`). Starts one extra gateway process per
configuration (on free ports, same HAPI, same Keycloak), drives each with a patient-context token
of the `triage-chatbot` client (standalone launch as the first seeded patient) for the same time,
and prints throughput and latency (median, p99, in ms with sub-millisecond precision) and the
ratios to direct HAPI. The load generator runs on the same machine: compare ratios, not absolutes.
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


def configurations() -> dict[str, dict[str, str] | None]:
    """name -> control modes (None: the bare pass-through proxy)."""
    off = {c: "off" for c in RUNTIME_CONTROLS}
    configs: dict[str, dict[str, str] | None] = {"proxy only": None, "token only": dict(off)}
    for control in RUNTIME_CONTROLS:
        configs[f"token + {control}"] = {**off, control: "enforce"}
    configs["all controls"] = {c: "enforce" for c in RUNTIME_CONTROLS}
    return configs


def start_gateway(
    cfg: LabConfig, modes: dict[str, str] | None, tmp: Path
) -> tuple[str, subprocess.Popen[bytes]]:
    port = free_port()
    cmd = [sys.executable, "-m", "gateway", "--port", str(port), "--upstream", cfg.hapi_base_url]
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
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    cfg = load_config()
    if read_seed_record(cfg) is None:
        raise SystemExit("the lab is not seeded: run `fhirlab seed` first")
    apply_profiles(cfg, [CLIENT])
    patient = "pat-a-000000"
    server = discover_issuer(cfg.issuer("tenant-a"))
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="fhirlab-gwcost-") as tmp:
        for name, modes in [("direct HAPI", "direct"), *configurations().items()]:
            with SmartClient(server, PublicClient(CLIENT), "http://localhost:9999/callback") as c:
                token = c.authorization_code(patient, DEMO_PASSWORD, SCOPE).access_token
            if modes == "direct":
                base, proc = cfg.hapi_base_url, None
            else:
                base, proc = start_gateway(cfg, modes, Path(tmp))  # type: ignore[arg-type]
            try:
                result = asyncio.run(
                    drive(name, base, token, patient, args.seconds, args.concurrency)
                )
            finally:
                if proc is not None:
                    proc.terminate()
                    proc.wait(timeout=15)
            results.append(result)
            print(f"  measured {name:<16} {result.rate:8.1f} req/s", file=sys.stderr)
    direct = results[0]
    print(
        f"\n{args.concurrency} concurrent clients, {args.seconds:.0f} s each, "
        f"load average {os.getloadavg()[0]:.1f}; mix: Patient read + Observation search"
    )
    print(
        f"{'configuration':<18}{'req/s':>9}{'ratio':>8}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'+p50 ms':>9}{'+p99 ms':>9}{'errors':>8}"
    )
    for r in results:
        print(
            f"{r.name:<18}{r.rate:9.1f}{r.rate / direct.rate:8.2f}{r.pct(0.5):9.2f}"
            f"{r.pct(0.99):9.2f}{r.pct(0.5) - direct.pct(0.5):9.2f}"
            f"{r.pct(0.99) - direct.pct(0.99):9.2f}{r.errors:8d}"
        )


if __name__ == "__main__":
    main()

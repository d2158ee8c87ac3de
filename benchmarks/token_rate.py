"""Token endpoint throughput for SMART backend services (client_credentials + private_key_jwt).

    .venv/bin/python benchmarks/token_rate.py [--seconds 20] [--concurrency 4]

Uses the running lab (`fhirlab up`; FHIRLAB_* variables pick the lab) and the approved analytics
client: every request signs a fresh client assertion (unique jti) and gets a token from Keycloak.
Prints tokens/s, latency percentiles, and the Keycloak sizing guide's anchor for comparison
(120 client-credential grants/s per vCPU). The load generator shares the machine's cores with
Keycloak, so the figure is a lower bound for Keycloak alone.
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time

from labcore.config import load_config
from simulator.authserver.apply import apply_profiles, select_profiles
from simulator.smart.auth import PrivateKeyJwt
from simulator.smart.client import SmartClient
from simulator.smart.discovery import discover_issuer
from simulator.smart.keys import client_key

ANCHOR_PER_VCPU = 120


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    cfg = load_config()
    apply_profiles(cfg, ["population-analytics"])
    profile = select_profiles(cfg, ["population-analytics"])[0]
    tenant = profile.tenants[0]
    server = discover_issuer(cfg.issuer(tenant))
    key = client_key(cfg.home, tenant, profile.client_id)
    scope = " ".join(profile.scopes)
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + args.seconds

    def worker() -> None:
        with SmartClient(server, PrivateKeyJwt(profile.client_id, key)) as client:
            client.client_credentials(scope)  # warm the connection
            while time.monotonic() < deadline:
                t0 = time.perf_counter()
                try:
                    client.client_credentials(scope)
                except Exception as exc:  # counted and reported
                    with lock:
                        errors.append(str(exc))
                    continue
                with lock:
                    latencies.append((time.perf_counter() - t0) * 1000)

    t0 = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(args.concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - t0
    latencies.sort()
    rate = len(latencies) / elapsed
    cpus = os.cpu_count() or 1

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] if latencies else 0.0

    print(f"client_credentials + private_key_jwt, {args.concurrency} threads, {elapsed:.1f} s")
    print(f"  tokens issued      {len(latencies)}  ({len(errors)} errors)")
    print(f"  throughput         {rate:.1f} tokens/s")
    print(f"  latency ms         p50 {pct(0.5):.1f}  p90 {pct(0.9):.1f}  p99 {pct(0.99):.1f}"
          f"  mean {statistics.fmean(latencies) if latencies else 0:.1f}")  # fmt: skip
    print(
        f"  sizing-guide anchor {ANCHOR_PER_VCPU}/s per vCPU x {cpus} vCPU = "
        f"{ANCHOR_PER_VCPU * cpus}/s; measured/anchor = {rate / (ANCHOR_PER_VCPU * cpus):.2f}"
    )
    print(f"  load average       {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()

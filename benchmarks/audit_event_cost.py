"""What storing FHIR AuditEvents costs HAPI (policy `audit.fhir_audit_events`).

    .venv/bin/python benchmarks/audit_event_cost.py [--batches 6] [--batch-size 100]

Uses the running lab (`fhirlab up`; FHIRLAB_* variables pick the lab): posts batch Bundles of
AuditEvents, shaped exactly as the gateway's poster sends them, straight to HAPI, and prints the
time HAPI takes per AuditEvent (median batch). Compare with the time of the request each event
records (a read is a few ms): that ratio is why the lab leaves the option off. The events stay in
HAPI (tagged with tenant-a, client `benchmark`).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import httpx

from gateway.audit import AuditRecord
from gateway.audit.fhir_poster import AuditEventPoster
from labcore.config import load_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=100)
    args = parser.parse_args()
    cfg = load_config(os.environ)
    poster = AuditEventPoster(cfg.hapi_base_url, cfg.gateway_base_url)
    seconds = []
    with httpx.Client(timeout=120) as client:
        for b in range(args.batches):
            records = [
                AuditRecord(
                    ts=time.time(),
                    request_id=f"bench-{b}-{n}",
                    method="GET",
                    path="/fhir/Patient/pat-a-000000",
                    client_id="benchmark",
                    tenant="tenant-a",
                    patients=("pat-a-000000",),
                    interaction="read",
                    resource_type="Patient",
                    decision="allow",
                    status=200,
                )
                for n in range(args.batch_size)
            ]
            body = poster._bundle(records)
            t0 = time.perf_counter()
            try:
                resp = client.post(
                    cfg.hapi_base_url,
                    content=body,
                    headers={"Content-Type": "application/fhir+json"},
                )
            except httpx.HTTPError as exc:
                raise SystemExit(f"cannot reach HAPI at {cfg.hapi_base_url}: {exc}") from None
            seconds.append(time.perf_counter() - t0)
            if resp.status_code != 200:
                raise SystemExit(f"HAPI answered {resp.status_code}: {resp.text[:300]}")
    per_event_ms = statistics.median(seconds) / args.batch_size * 1000
    print(f"batches of {args.batch_size}: " + ", ".join(f"{s:.2f} s" for s in seconds))
    print(f"HAPI time per AuditEvent (median batch): {per_event_ms:.1f} ms")


if __name__ == "__main__":
    main()

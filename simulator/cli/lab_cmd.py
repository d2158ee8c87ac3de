"""`fhirlab lab`: the lab's main job on the embedded defaults.

Today: bring the stack up if needed, check it end to end through the gateway, and write a results
directory. Seeding, client provisioning, scenario replay and the load matrix join this command as
they land (see docs/).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import httpx
import typer

from simulator.authserver.tenants import load_tenants
from simulator.cli.console import err, out
from simulator.cli.stack_cmds import start_stack
from simulator.stack import lab as stack
from simulator.stack.config import LabConfig, load_config
from simulator.stack.errors import LabError

RESULTS_SCHEMA_VERSION = "0.1"


def smoke_checks(cfg: LabConfig) -> list[dict[str, object]]:
    """End-to-end checks of the running stack; each is a dict with id, status, evidence."""
    checks: list[dict[str, object]] = []
    with httpx.Client(timeout=30) as http:
        meta = http.get(f"{cfg.gateway_base_url}/metadata")
        ok = meta.status_code == 200 and meta.json().get("fhirVersion") == "4.0.1"
        checks.append(
            {
                "id": "stack.fhir-through-gateway",
                "status": "pass" if ok else "fail",
                "evidence": f"GET /fhir/metadata via gateway -> {meta.status_code}, "
                f"fhirVersion {meta.json().get('fhirVersion') if meta.status_code == 200 else '-'}",
            }
        )
        for tenant in load_tenants(cfg.repo).ids:
            issuer = cfg.issuer(tenant)
            disco = http.get(f"{issuer}/.well-known/openid-configuration")
            ok = disco.status_code == 200 and disco.json().get("issuer") == issuer
            checks.append(
                {
                    "id": f"stack.keycloak-realm.{tenant}",
                    "status": "pass" if ok else "fail",
                    "evidence": f"GET {issuer}/.well-known/openid-configuration -> "
                    f"{disco.status_code}",
                }
            )
    return checks


def lab(
    results: Annotated[
        Path, typer.Option(help="directory to write results into (a timestamped subdirectory)")
    ] = Path("results"),
) -> None:
    """Run the lab's main job: stand up the stack, check it, and write the results directory."""
    cfg = load_config()
    t0 = time.time()
    up = start_stack(cfg)
    checks = smoke_checks(cfg)
    run_dir = results / time.strftime("%Y%m%d-%H%M%S", time.gmtime(t0))
    run_dir.mkdir(parents=True, exist_ok=True)
    document = {
        "schema_version": RESULTS_SCHEMA_VERSION,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0)),
        "duration_s": round(time.time() - t0, 1),
        "stack": {
            s.name: {"state": s.state, "url": s.url, "rss_mb": s.rss_mb} for s in stack.status(cfg)
        },
        "start_seconds": up.seconds,
        "checks": checks,
    }
    (run_dir / "results.json").write_text(json.dumps(document, indent=2) + "\n")
    for check in checks:
        colour = "green" if check["status"] == "pass" else "red"
        out.print(f"[{colour}]{check['status']:<4}[/] {check['id']}: {check['evidence']}")
    err.print(f"results written to {run_dir}")
    if any(c["status"] != "pass" for c in checks):
        raise LabError("the stack failed its end-to-end checks", f"see {run_dir / 'results.json'}")

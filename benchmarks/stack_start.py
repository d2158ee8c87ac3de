"""Start-up cost of the native stack: cold (empty caches) and warm `fhirlab up`, and memory.

    .venv/bin/python benchmarks/stack_start.py            # warm only (uses your caches)
    .venv/bin/python benchmarks/stack_start.py --cold     # also cold: fresh cache and Maven repo
                                                          # in a temp dir (downloads ~600 MB)

Runs in its own lab directory on ports 4xxxx, and stops what it starts. Timings depend on what
else the machine is doing: the load average is printed beside them.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PORTS = {
    "FHIRLAB_GATEWAY_PORT": "48080",
    "FHIRLAB_KEYCLOAK_PORT": "48180",
    "FHIRLAB_KEYCLOAK_MANAGEMENT_PORT": "49180",
    "FHIRLAB_HAPI_PORT": "48280",
}
FHIRLAB = [sys.executable, "-m", "simulator"]


def run_up(env: dict[str, str], label: str) -> None:
    t0 = time.monotonic()
    up = subprocess.run([*FHIRLAB, "up"], env=env, capture_output=True, text=True, check=False)
    wall = time.monotonic() - t0
    if up.returncode != 0:
        print(up.stderr[-3000:], file=sys.stderr)
        raise SystemExit(f"{label}: fhirlab up failed")
    status = subprocess.run(
        [*FHIRLAB, "status"], env=env, capture_output=True, text=True, check=False
    ).stdout
    load = os.getloadavg()[0]
    print(f"\n{label}: fhirlab up took {wall:.1f} s wall (load average {load:.1f})")
    for line in up.stderr.splitlines():
        if "ready in" in line:
            print("   ", line.strip())
    print(status)
    subprocess.run([*FHIRLAB, "down"], env=env, capture_output=True, check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cold", action="store_true", help="also measure with empty caches")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fhirlab-start-") as tmp:
        env = {**os.environ, **PORTS, "FHIRLAB_HOME": str(Path(tmp) / "lab")}
        if args.cold:
            cold = {
                **env,
                "FHIRLAB_CACHE": str(Path(tmp) / "cache"),
                "MAVEN_OPTS": f"-Dmaven.repo.local={Path(tmp) / 'm2'}",
            }
            run_up(cold, "cold (empty ~/.cache/fhirlab and Maven repository)")
            run_up(cold, "warm (second start, same caches, data kept)")
        else:
            run_up(env, "first start of a new lab directory (warm caches)")
            run_up(env, "warm (second start, data kept)")


if __name__ == "__main__":
    main()

"""Nothing lost under load: one gateway with every control on, driven at saturation by concurrent
keep-alive clients (reads by id and 20-result searches in turn, one patient-context token), then
checked: audit records = answers received, the hash chain verifies, no 5xx.

    .venv/bin/python benchmarks/saturation.py [--clients 8] [--seconds 60] [--stop-after 30]

With `--stop-after S`, the gateway gets SIGTERM S seconds in, while the clients keep sending: a
graceful stop in the middle of the load, after which every answer sent must still have its
record. Needs the running lab, seeded (`fhirlab up`, `fhirlab seed`). Prints one line per second,
then the result as JSON (`simulator/load/saturation.py`); exits 1 when something was lost.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from labcore.config import load_config
from labcore.errors import LabError
from simulator.load.saturation import patient_token, saturate


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--stop-after", type=float, help="SIGTERM the gateway this far in")
    args = parser.parse_args()
    cfg = load_config()

    def progress(elapsed: float, answered: int) -> None:
        print(f"  {elapsed:5.1f} s  {answered:7d} answers", file=sys.stderr)

    try:
        token, patient = patient_token(cfg)
        with tempfile.TemporaryDirectory(prefix="fhirlab-saturation-") as tmp:
            load = os.getloadavg()[0]
            result = saturate(
                cfg, Path(tmp), token, patient, clients=args.clients, seconds=args.seconds,
                stop_after=args.stop_after, progress=progress,
            )  # fmt: skip
    except LabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({**result.to_dict(), "load_average_before": load}, indent=2))
    problems = result.problems()
    print(
        f"{result.answered} answers in {result.seconds:.1f} s = {result.rate:.0f} req/s through "
        f"the gateway, {args.clients} clients, every control on; "
        + ("nothing lost" if not problems else "PROBLEMS: " + "; ".join(problems)),
        file=sys.stderr,
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

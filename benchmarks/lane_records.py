"""The gateway's CPU time per request the fast lane served: its audit record, in-process.

    .venv/bin/python benchmarks/lane_records.py [--rate 660] [--batch-ms 50 200] [--runs 3]
                                                [--before DIR]

A request the compiled front serves costs the Python gateway one event line to read and turn
into the C06 audit record (`gateway/fast_lane.py`): the anomaly detectors, the hash chain and
the write. The front hands the lines over in batches (`gateway/fastlane/src/events.rs`), and
each batch wakes the gateway from sleep, which is not free on a small virtual machine. Each run
here is a fresh interpreter in the tree under test that reads lines the way the gateway reads
the front's, from a child process that writes them at `--rate` lines a second in batches of
`--batch-ms`, for `--seconds`, and counts its own CPU time (both threads: the event loop and the
audit log's writer) per record. No sockets, no HAPI: the Python half of a lane request, to
compare batch sizes and before/after a change (`--before DIR`, a checkout of another commit:
`git archive <commit> | tar -x -C DIR`, run alternately with this one). Prints each tree's and
batch size's median and range over its runs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from in_tree import run_probe  # beside this script in benchmarks/

HERE = Path(__file__).resolve().parents[1]

# Writes the front's event lines (the fields of gateway/fastlane/src/events.rs's Event) to
# stdout: argv rate/s, seconds, batch seconds.
FEEDER = r"""
import json, sys, time
rate, seconds, batch_s = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
out = sys.stdout.buffer
start = time.time()
sent = 0
while time.time() - start < seconds:
    due = int((time.time() - start) * rate) - sent
    out.write(b"".join(json.dumps({
        "ts": time.time(), "request_id": f"req-{sent + k:012d}", "method": "GET",
        "path": "/fhir/Patient/pat-a-000001", "query": "", "grant": "g1",
        "interaction": "read", "resource_type": "Patient", "status": 200,
        "result_count": 1, "patients": ["pat-a-000001"], "latency_ms": 0.731,
    }, separators=(",", ":")).encode() + b"\n" for k in range(due)))
    out.flush()
    sent += due
    time.sleep(batch_s)
"""

# Run inside the tree under test: prints {"records": n, "us": CPU µs per record}.
PROBE = r"""
import asyncio, json, resource, sys
from pathlib import Path
from gateway.anomaly import AnomalyEngine
from gateway.fast_lane import FastLane
from gateway.policy import POLICY_FILE, load_policy
from gateway.recorder import GatewayAudit
from gateway.token_verifier import VerifiedToken

feeder, rate, seconds, batch_s, audit_dir = sys.argv[1], *sys.argv[2:5], Path(sys.argv[5])
TOKEN = VerifiedToken(token_id="jti-1", issuer="http://kc.test/realms/tenant-a",
    tenant="tenant-a", client_id="triage-chatbot", subject="u", scopes=None,
    patient="pat-a-000001", encounter=None, issued_at=1, expires_at=2**31, jti="jti-1")

class Grants:  # the one grant the lines name
    def token_of(self, grant):
        return TOKEN

async def main():
    policy = load_policy(POLICY_FILE)
    engine = AnomalyEngine.from_config(policy.detectors,
        profiles={"triage-chatbot": frozenset({"Patient", "Observation"})})
    audit = GatewayAudit(audit_dir, engine)
    records = 0
    def record(r):
        nonlocal records
        records += 1
        audit.record_done(r)
    lane = FastLane(Path("front"), {"secret": "-"}, Grants(), record)
    # the feeder stands in for the front: the gateway's own reading of its lines
    lane._proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", feeder, rate, seconds, batch_s, stdout=asyncio.subprocess.PIPE)
    before = resource.getrusage(resource.RUSAGE_SELF)
    await lane._read_events()
    await audit.aclose()
    after = resource.getrusage(resource.RUSAGE_SELF)
    await lane._proc.wait()
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    print(json.dumps({"records": records, "us": cpu / max(records, 1) * 1e6}))

asyncio.run(main())
"""


def run_once(tree: Path, rate: float, seconds: float, batch_ms: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as audit:
        args = (str(rate), str(seconds), str(batch_ms / 1000), audit)
        return run_probe(tree, PROBE, FEEDER, *args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=660.0, help="event lines a second")
    parser.add_argument("--seconds", type=float, default=8.0, help="per run")
    parser.add_argument(
        "--batch-ms", type=float, nargs="+", default=[200.0], help="batch sizes to compare"
    )
    parser.add_argument("--runs", type=int, default=3, help="per tree and batch size")
    parser.add_argument("--before", type=Path, help="another checkout, run alternately")
    args = parser.parse_args()
    if args.rate <= 0 or args.seconds <= 0 or min(args.batch_ms) <= 0:
        raise SystemExit("error: --rate, --seconds and --batch-ms must be > 0")
    if args.before is not None and not (args.before / "gateway").is_dir():
        raise SystemExit(f"error: {args.before} is not a checkout (no gateway/ in it)")
    trees = {"this tree": HERE}
    if args.before:
        trees = {f"before ({args.before})": args.before.resolve(), "this tree": HERE}
    cells = [(name, batch) for batch in args.batch_ms for name in trees]
    found: dict[tuple[str, float], list[float]] = {cell: [] for cell in cells}
    for n in range(args.runs):
        for name, batch in cells:
            result = run_once(trees[name], args.rate, args.seconds, batch)
            found[name, batch].append(result["us"])
        print(f"  run {n + 1}/{args.runs} done", file=sys.stderr)
    print(f"CPU µs per lane record, {args.rate:g} lines/s for {args.seconds:g} s per run")
    print(f"{'tree':40} {'batch ms':>9} {'median [range]':>22}")
    for (name, batch), values in found.items():
        cell = f"{statistics.median(values):7.1f} [{min(values):.1f}, {max(values):.1f}]"
        print(f"{name:40} {batch:9g} {cell:>22}")


if __name__ == "__main__":
    main()

"""The gateway's own CPU time per request, in-process: no sockets, no HAPI, no Keycloak.

    .venv/bin/python benchmarks/gateway_cpu.py [--requests 3000] [--runs 5] [--before DIR]

Each run is a fresh interpreter that builds the real app (`gateway.app.create_app`) with the
lab's policy, every control enforced (the rate limit lifted), and drives its ASGI callable with a
patient-context token: a read by id (`Patient/p1`) and a 20-result search
(`Observation?patient=p1`). HAPI and Keycloak are answered by in-memory mocks, so what is timed
(`time.process_time` per request, after a warm-up) is the gateway's work plus the mocks' small
share, and nothing else on the machine moves it much: the figure to cut and to compare before and
after a change. `--before DIR` (a checkout of another commit: `git archive <commit> | tar -x -C
DIR`) alternates runs of that tree with runs of this one. Prints each tree's median and range over
its runs; the real-stack figures (with sockets and HAPI) are `benchmarks/gateway_cost.py`'s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from in_tree import run_probe  # beside this script in benchmarks/

HERE = Path(__file__).resolve().parents[1]

# Run inside the tree under test (its directory first on sys.path): prints {path: µs/request}.
PROBE = r"""
import asyncio, json, sys, time
from pathlib import Path
import httpx
from joserfc import jwt
from joserfc.jwk import RSAKey
from gateway.app import create_app
from gateway.config import GatewayConfig
from gateway.policy import POLICY_FILE, load_policy
from gateway.settings import GatewaySettings, TenantIssuer
from gateway.stages.tenant import TENANT_TAG_SYSTEM

N, AUDIT = int(sys.argv[1]), Path(sys.argv[2])
ISS, PUBLIC = "http://kc.test/realms/tenant-a", "http://localhost:8080/fhir"
KEY = RSAKey.generate_key(2048, parameters={"kid": "k1", "alg": "RS256"})
META = {"tag": [{"system": TENANT_TAG_SYSTEM, "code": "tenant-a"}]}
PATIENT = {"resourceType": "Patient", "id": "p1", "meta": META, "name": [{"family": "X"}]}
OBS = [{"resourceType": "Observation", "id": f"o{i}", "meta": META, "status": "final",
        "code": {"text": "x"}, "subject": {"reference": "Patient/p1"}} for i in range(20)]
BUNDLE = {"resourceType": "Bundle", "type": "searchset", "total": 20, "entry": [
    {"fullUrl": f"http://h/fhir/Observation/{o['id']}", "resource": o,
     "search": {"mode": "match"}} for o in OBS]}
BODIES = {"/fhir/Patient/p1": json.dumps(PATIENT).encode(),
          "/fhir/Observation": json.dumps(BUNDLE).encode()}

def hapi(request):
    return httpx.Response(200, stream=httpx.ByteStream(BODIES[request.url.path]),
                          headers={"content-type": "application/fhir+json"})

def keycloak(request):
    if request.url.path.endswith("/certs"):
        return httpx.Response(200, json={"keys": [KEY.as_dict(private=False)]})
    return httpx.Response(200, json={"active": True})

policy = load_policy(POLICY_FILE)
policy = policy.model_copy(update={"rate_limit": policy.rate_limit.model_copy(
    update={"requests_per_second": 1e9, "burst": 10**9})})
settings = GatewaySettings(upstream="http://hapi.test/fhir")
config = GatewayConfig(settings=settings, policy=policy, public_base=PUBLIC, audit_dir=AUDIT,
    issuers=(TenantIssuer("tenant-a", ISS, client_secret="s"),),
    client_classes={"triage-chatbot": "operational-ai"})
app = create_app(settings, httpx.MockTransport(hapi), config=config,
                 auth_transport=httpx.MockTransport(keycloak))
now = int(time.time())
token = jwt.encode({"alg": "RS256", "kid": "k1"}, {"iss": ISS, "aud": PUBLIC, "iat": now,
    "exp": now + 300, "azp": "triage-chatbot", "sub": "u", "jti": "j1", "patient": "p1",
    "scope": "launch/patient patient/Patient.rs patient/Observation.rs"}, KEY)
HEADERS = [(b"host", b"localhost:8080"), (b"authorization", f"Bearer {token}".encode()),
           (b"accept", b"application/fhir+json")]

async def one(path, query):
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "GET", "scheme": "http", "path": path, "raw_path": path.encode(),
             "query_string": query, "root_path": "", "headers": HEADERS,
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 8080)}
    sent = []
    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}
    async def send(message):
        sent.append(message)
    await app(scope, receive, send)
    if sent[0]["status"] != 200:
        raise SystemExit(f"{path}: HTTP {sent[0]['status']}")

async def main():
    kinds = {"read": ("/fhir/Patient/p1", b""), "search": ("/fhir/Observation", b"patient=p1")}
    for _ in range(300):
        for path, query in kinds.values():
            await one(path, query)
    out = {}
    for kind, (path, query) in kinds.items():
        t0 = time.process_time()
        for _ in range(N):
            await one(path, query)
        out[kind] = (time.process_time() - t0) / N * 1e6
    print(json.dumps(out))

asyncio.run(main())
"""


def run_once(tree: Path, requests: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as audit:
        return run_probe(tree, PROBE, str(requests), audit)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000, help="per kind, per run")
    parser.add_argument("--runs", type=int, default=5, help="per tree")
    parser.add_argument("--before", type=Path, help="another checkout, run alternately")
    args = parser.parse_args()
    trees = {"this tree": HERE}
    if args.before:
        trees = {f"before ({args.before})": args.before.resolve(), "this tree": HERE}
    found: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
    for n in range(args.runs):
        for name, tree in trees.items():
            found[name].append(run_once(tree, args.requests))
        print(f"  run {n + 1}/{args.runs} done", file=sys.stderr)
    print(f"CPU µs per request, all controls, {args.requests} requests per kind and run")
    print(f"{'tree':40} {'read median [range]':>26} {'search median [range]':>26}")
    for name, runs in found.items():
        cells = []
        for kind in ("read", "search"):
            values = [r[kind] for r in runs]
            cells.append(f"{statistics.median(values):7.0f} [{min(values):.0f}, {max(values):.0f}]")
        print(f"{name:40} {cells[0]:>26} {cells[1]:>26}")


if __name__ == "__main__":
    main()

"""What each gateway control costs: the same request mix against direct HAPI, the bare proxy,
each control alone and all controls, side by side in one run.

    .venv/bin/python benchmarks/gateway_cost.py [--seconds 10] [--rounds 5] [--concurrency 8]
        [--only "proxy only" --only "all controls"] [--before DIR] [--peer [--peer-warmup 15]]
        [--floor] [--relay-floor]

Needs the running lab (`fhirlab up`, seeded: `fhirlab seed`). Starts one extra gateway process per
configuration (`simulator/stack/extra_gateway.py`: free port, same HAPI, same Keycloak), drives
each with a patient-context token of the `triage-chatbot` client (standalone launch as the first
seeded patient) for the same total time, in interleaved rounds so that drift falls on every
configuration alike, and prints throughput and latency (median, p99, in ms with sub-millisecond
precision), the ratios to direct HAPI, and the CPU time each gateway process spent per request
(user + system, read from the process itself: the figure least disturbed by other load on the
machine). The load generator runs on the same machine: compare ratios, not absolutes. The load
comes from a light keep-alive HTTP/1.1 client (`--client httpx` for httpx, which takes several
times the CPU per request from the same two cores). A second
table gives the added latency per kind of request (read, search): the mix's overall median falls
in the gap between the two kinds and is the least stable figure.

`--before DIR` (a checkout of an earlier commit, e.g. `git archive <commit> | tar -x -C DIR`) adds
each configuration once more as "before: <name>", its gateway running DIR's code, in the same
interleaved rounds: a before/after comparison under the same load.

`--peer` adds the peer gateway google/fhir-gateway (0.3.2, its published server library with its
patient access checker, started by `benchmarks/peer_gateway.py`, whose docstring says what it
runs and how it reads the lab's tokens) as one more configuration, "google/fhir-gateway": same
requests, same token, same rounds, its CPU per request read from its JVM process (JIT compiler
and garbage collector threads included). A JVM compiles its hot code during the first thousands
of requests, so the peer is first driven unmeasured for `--peer-warmup` seconds (seen here at one
client: about 13 ms of CPU per read over its first thousand reads, 5 ms over the second, 3.5-4 ms
from the fourth on). 0.3.2 also opens a new HTTP client, and connection, to HAPI per request.

"all controls, fast lane" is the gateway with every control on and the compiled fast lane in
front of it (`python -m gateway --fast-lane`, `gateway/fast_lane.py`); its CPU per request is
both processes' together (the fast lane runs as the gateway's child, paused with it).

`--floor` and `--relay-floor` add the two floors under the gateway's CPU per request: its own
server answering a stored Patient with no upstream (`benchmarks/fixed_answer.py`), and nginx
relaying to the same HAPI with no checks (`benchmarks/nginx_relay.py`), the cost of a relay
written in C that does nothing else. Both are paused between their slices like the gateways.

While one configuration is driven, every other gateway process is paused (SIGSTOP, resumed
after): an idle uvicorn process still wakes ten times a second, and with a dozen of them on two
cores those wake-ups showed in the figures of the one under test (`--keep-idle-running` leaves
them running). The peer's JVM is paused alike: a stopped JVM resumes where it left off, and 0.3.2
keeps no pooled connection to HAPI that a pause could leave stale.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import ExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
from nginx_relay import RELAY, nginx_relay  # beside this script in benchmarks/
from peer_gateway import PEER, peer_gateway
from served import served

from gateway.controls import Mode
from gateway.policy import RUNTIME_CONTROLS
from gateway.upstream_client import UpstreamClient
from labcore.config import load_config
from labcore.errors import LabError
from simulator.load.saturation import patient_token
from simulator.stack.extra_gateway import extra_gateway, free_port, modes_all

DIRECT = "direct HAPI"
FLOOR = "server alone"
SLOW_SERVER = ("--loop", "asyncio", "--http", "h11")  # uvicorn without uvloop/httptools
FAST = "all controls, fast lane"  # the compiled front (gateway/fastlane/) before the gateway


KINDS = ("read", "search")  # the mix: one of each in turn


@dataclass
class Result:
    name: str
    latencies_ms: list[float]
    errors: int
    seconds: float
    cpu_s: float = 0.0  # the gateway process's CPU time while it was driven
    by_kind: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in KINDS})
    rounds: list[tuple[float, float]] = field(default_factory=list)  # (req/s, CPU µs) per round

    @property
    def rate(self) -> float:
        return len(self.latencies_ms) / self.seconds if self.seconds else float("nan")

    @property
    def cpu_us(self) -> float:
        n = len(self.latencies_ms) + self.errors
        return self.cpu_s / n * 1e6 if n else float("nan")

    def pct(self, p: float) -> float:
        return _pct(self.latencies_ms, p)

    def kind_pct(self, kind: str, p: float) -> float:
        return _pct(self.by_kind[kind], p)


def _pct(values: list[float], p: float) -> float:
    data = sorted(values)
    return data[min(len(data) - 1, int(p * len(data)))] if data else float("nan")


def configurations() -> dict[str, tuple[dict[str, Mode] | None, tuple[str, ...]]]:
    """name -> (control modes (None: the bare pass-through proxy), extra gateway arguments)."""
    off = modes_all(Mode.OFF)
    every = modes_all(Mode.ENFORCE)
    configs: dict[str, tuple[dict[str, Mode] | None, tuple[str, ...]]] = {
        "proxy only": (None, ()),
        "token only": (dict(off), ()),
    }
    for control in RUNTIME_CONTROLS:
        configs[f"token + {control}"] = ({**off, control: Mode.ENFORCE}, ())
    configs["all controls"] = (every, ())
    configs["all, asyncio+h11"] = (every, SLOW_SERVER)
    configs[FAST] = (every, ("--fast-lane",))
    return configs


async def drive(
    name: str,
    base: str,
    token: str,
    patient: str,
    seconds: float,
    concurrency: int,
    proc: psutil.Process | None = None,
    client: str = "light",
    mix: tuple[str, ...] = KINDS,
    count: int = 10,
) -> Result:
    every = {
        "read": f"/Patient/{patient}",
        "search": f"/Observation?subject=Patient/{patient}&_count={count}",
    }
    kinds = list(mix)
    paths = [every[kind] for kind in kinds]
    latencies: list[float] = []
    by_kind: dict[str, list[float]] = {k: [] for k in KINDS}
    errors = 0
    async with _client(client, base, token, concurrency) as get:
        for path in paths:  # warm up connections, JWKS, caches
            await get(path)
        cpu0 = _cpu_s(proc)
        deadline = time.perf_counter() + seconds

        async def worker(offset: int) -> None:
            nonlocal errors
            i = offset
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                status = await get(paths[i % len(paths)])
                if status == 200:
                    ms = (time.perf_counter() - t0) * 1000
                    latencies.append(ms)
                    by_kind[kinds[i % len(paths)]].append(ms)
                else:
                    errors += 1
                i += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(k) for k in range(concurrency)))
        elapsed = time.perf_counter() - t0
        return Result(name, latencies, errors, elapsed, _cpu_s(proc) - cpu0, by_kind)


@asynccontextmanager
async def _client(
    kind: str, base: str, token: str, concurrency: int
) -> AsyncIterator[Callable[[str], Awaitable[int]]]:
    """`get(path) -> status`, the body read whole (and un-gzipped) as a client would.

    "light": a keep-alive HTTP/1.1 client on asyncio and httptools (the gateway's upstream
    client, which costs a fraction of httpx's CPU per request: on two cores the load generator
    takes CPU from the servers it measures, so the lighter the better); "httpx": httpx."""
    headers = {
        "Authorization": f"Bearer {token}",
        "Accept": "application/fhir+json",
        "Accept-Encoding": "gzip",
    }
    if kind == "httpx":
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(headers=headers, limits=limits, timeout=30) as http:

            async def get_httpx(path: str) -> int:
                resp = await http.get(base + path)
                return resp.status_code

            yield get_httpx
        return
    light = UpstreamClient(base, timeout_s=30, max_connections=concurrency)
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]

    async def get_light(path: str) -> int:
        resp = await light.request("GET", path.encode(), raw)
        body = await resp.read()
        if resp.header(b"content-encoding") == b"gzip":
            zlib.decompress(body, wbits=zlib.MAX_WBITS | 16)
        return resp.status

    try:
        yield get_light
    finally:
        await light.aclose()


@contextmanager
def fixed_answer_server(host: str, log: Path) -> Iterator[tuple[str, psutil.Process]]:
    """The server's floor (`benchmarks/fixed_answer.py`): uvicorn with the gateway's event loop
    and HTTP parser answering every request with one stored Patient. (base URL, process)."""
    port = free_port(host)
    cmd = [sys.executable, "-m", "uvicorn", "--app-dir", str(Path(__file__).parent)]
    cmd += ["fixed_answer:app", "--host", host, "--port", str(port), "--no-access-log"]
    cmd += ["--loop", "uvloop", "--http", "httptools", "--log-level", "warning"]
    base = f"http://{host}:{port}/fhir"
    with served(cmd, base, log, "the fixed-answer server") as proc:
        yield base, psutil.Process(proc.pid)


def _spread(values: list[float]) -> str:
    return f"{min(values):.0f}–{max(values):.0f}" if values else "—"


def _family(proc: psutil.Process) -> list[psutil.Process]:
    """A gateway's process and its children (the fast lane runs as the gateway's child)."""
    with contextlib.suppress(psutil.NoSuchProcess):
        return [proc, *proc.children(recursive=True)]
    return [proc]


def _suspend(procs: list[psutil.Process]) -> None:
    for proc in procs:
        for each in _family(proc):
            each.suspend()


def _resume(procs: list[psutil.Process]) -> None:
    for proc in procs:
        for each in _family(proc):
            with contextlib.suppress(psutil.NoSuchProcess):
                each.resume()


def _cpu_s(proc: psutil.Process | None) -> float:
    """The CPU time of a gateway's processes (its own and its children's, e.g. the fast
    lane's)."""
    if proc is None:
        return 0.0
    total = 0.0
    for each in _family(proc):
        with contextlib.suppress(psutil.NoSuchProcess):
            times = each.cpu_times()
            total += times.user + times.system
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0, help="per configuration, in all")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved slices per config")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument(
        "--client",
        choices=["light", "httpx"],
        default="light",
        help="the load generator's HTTP client (light: asyncio + httptools, the least CPU)",
    )
    parser.add_argument(
        "--mix",
        choices=["both", *KINDS],
        default="both",
        help="the requests: a Patient read and an Observation search in turn, or one of them",
    )
    parser.add_argument("--count", type=int, default=10, help="results per search (_count)")
    parser.add_argument(
        "--only", action="append", help="run only this configuration (repeatable; direct always)"
    )
    parser.add_argument(
        "--before", type=Path, help="also run each configuration from this earlier checkout"
    )
    parser.add_argument(
        "--peer", action="store_true", help=f"also run the peer gateway {PEER} (Java, Maven)"
    )
    parser.add_argument(
        "--peer-warmup",
        type=float,
        default=15.0,
        help="seconds of unmeasured load on the peer before the rounds (its JIT compiles)",
    )
    parser.add_argument(
        "--floor",
        action="store_true",
        help=f"also run {FLOOR!r}: the same server answering a stored Patient (no upstream)",
    )
    parser.add_argument(
        "--relay-floor",
        action="store_true",
        help=f"also run {RELAY!r}: nginx relaying to HAPI, no checks (a compiled relay's floor)",
    )
    parser.add_argument(
        "--keep-idle-running",
        action="store_true",
        help="leave the gateways not under test running (by default they are paused)",
    )
    args = parser.parse_args()
    mix = KINDS if args.mix == "both" else (args.mix,)
    if args.before is not None and not (args.before / "gateway" / "app.py").is_file():
        raise SystemExit(f"--before {args.before}: not a checkout of this project (no gateway/)")
    configs = configurations()
    if args.only:
        unknown = sorted(set(args.only) - set(configs))
        if unknown:
            raise SystemExit(f"unknown configuration(s) {unknown}; known: {sorted(configs)}")
        configs = {name: configs[name] for name in configs if name in args.only}
    cfg = load_config()
    try:
        token, patient = patient_token(cfg)
    except LabError as exc:
        raise SystemExit(f"error: {exc}") from None
    runs = {name: (name, None) for name in configs}  # run name -> (configuration, source)
    if args.before is not None:
        runs = {
            **{f"before: {name}": (name, args.before) for name in configs},
            **runs,
        }
    names = [
        DIRECT,
        *([FLOOR] if args.floor else []),
        *([RELAY] if args.relay_floor else []),
        *runs,
        *([PEER] if args.peer else []),
    ]
    results = {name: Result(name, [], 0, 0.0) for name in names}
    slice_s = args.seconds / args.rounds
    with tempfile.TemporaryDirectory(prefix="fhirlab-gwcost-") as tmp, ExitStack() as stack:
        bases = {DIRECT: cfg.hapi_base_url}
        procs: dict[str, psutil.Process | None] = {DIRECT: None}
        if args.floor:
            try:
                bases[FLOOR], procs[FLOOR] = stack.enter_context(
                    fixed_answer_server(cfg.host, Path(tmp) / "fixed-answer.log")
                )
            except LabError as exc:
                raise SystemExit(f"error: {exc}") from None
        if args.relay_floor:
            try:
                bases[RELAY], procs[RELAY] = stack.enter_context(
                    nginx_relay(cfg.host, cfg.hapi_base_url, Path(tmp) / "nginx")
                )
            except LabError as exc:
                raise SystemExit(f"error: {exc}") from None
        for index, (name, (config, source)) in enumerate(runs.items()):
            modes, extra = configs[config]
            gateway = stack.enter_context(
                extra_gateway(
                    cfg,
                    name,
                    Path(tmp) / f"gw-{index}",
                    modes,
                    rate_limit=False,
                    server_args=extra,
                    source=source,
                )
            )
            bases[name] = gateway.base_url
            procs[name] = psutil.Process(gateway.process.pid)
        if args.peer:
            try:
                peer = stack.enter_context(peer_gateway(cfg, Path(tmp) / "peer"))
            except LabError as exc:
                raise SystemExit(f"error: {exc}") from None
            bases[PEER] = peer.base_url
            procs[PEER] = psutil.Process(peer.process.pid)
            # unmeasured: the JVM's JIT compiles the request path (see the module's docstring)
            print(f"  warming up {PEER} for {args.peer_warmup:g} s", file=sys.stderr)
            asyncio.run(
                drive(
                    PEER,
                    peer.base_url,
                    token,
                    patient,
                    args.peer_warmup,
                    args.concurrency,
                    None,
                    args.client,
                    mix,
                    args.count,
                )
            )
        gateways = [p for p in procs.values() if p is not None]
        if not args.keep_idle_running:
            stack.callback(_resume, gateways)  # also on Ctrl-C, so the gateways can stop
        # interleaved rounds, rotating the order: drift (HAPI warming up, caches, other
        # load on the machine) falls on every configuration alike
        for round_no in range(args.rounds):
            order = names[round_no % len(names) :] + names[: round_no % len(names)]
            for name in order:
                if not args.keep_idle_running:  # only the gateway under test runs
                    _suspend([p for p in gateways if p is not procs[name]])
                    _resume([procs[name]] if procs[name] is not None else [])
                part = asyncio.run(
                    drive(
                        name,
                        bases[name],
                        token,
                        patient,
                        slice_s,
                        args.concurrency,
                        procs[name],
                        args.client,
                        mix,
                        args.count,
                    )
                )
                total = results[name]
                total.latencies_ms.extend(part.latencies_ms)
                total.errors += part.errors
                total.seconds += part.seconds
                total.cpu_s += part.cpu_s
                total.rounds.append((part.rate, part.cpu_us))
                for kind in KINDS:
                    total.by_kind[kind].extend(part.by_kind[kind])
            print(f"  round {round_no + 1}/{args.rounds} done", file=sys.stderr)
    direct = results[DIRECT]
    print(
        f"\n{args.concurrency} concurrent clients, {args.seconds:.0f} s per configuration in "
        f"{args.rounds} interleaved rounds, load average {os.getloadavg()[0]:.1f}; "
        f"mix: {' + '.join(mix)} (searches of {args.count}); client: {args.client}"
    )
    print(
        f"{'configuration':<26}{'req/s':>9}{'ratio':>8}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'+p50 ms':>9}{'+p99 ms':>9}{'cpu µs':>8}{'errors':>8}"
    )
    for r in results.values():
        cpu = f"{r.cpu_us:8.0f}" if r.name != DIRECT else f"{'—':>8}"
        print(
            f"{r.name:<26}{r.rate:9.1f}{r.rate / direct.rate:8.2f}{r.pct(0.5):9.2f}"
            f"{r.pct(0.99):9.2f}{r.pct(0.5) - direct.pct(0.5):9.2f}"
            f"{r.pct(0.99) - direct.pct(0.99):9.2f}{cpu}{r.errors:8d}"
        )
    # The mix is bimodal (a read takes a fraction of a search), so the median of all requests
    # sits in the gap between the two and jumps with small shifts: the added latency is read per
    # kind of request, and summarised as the mean of the kinds' added medians.
    print("\nadded latency per kind of request (ms; the mix's median sits between the two kinds)")
    header = "".join(f"{k + ' p50':>12}{'+p50':>8}{'+p99':>8}" for k in mix)
    print(f"{'configuration':<26}{header}{'mean +p50':>11}")
    for r in results.values():
        cells, added = "", []
        for kind in mix:
            plus = r.kind_pct(kind, 0.5) - direct.kind_pct(kind, 0.5)
            added.append(plus)
            cells += (
                f"{r.kind_pct(kind, 0.5):12.2f}{plus:8.2f}"
                f"{r.kind_pct(kind, 0.99) - direct.kind_pct(kind, 0.99):8.2f}"
            )
        print(f"{r.name:<26}{cells}{sum(added) / len(added):11.2f}")
    _print_round_spread(results, direct, results.get(PEER))


def _print_round_spread(results: dict[str, Result], direct: Result, peer: Result | None) -> None:
    """Each figure once per round (min–max over the rounds): the run's own spread. A round's
    throughput ratio divides by the same round's direct HAPI (and peer) figure."""
    print("\nper round, min–max over the rounds")
    peer_col = f"{'× peer':>14}" if peer is not None else ""
    print(f"{'configuration':<26}{'cpu µs':>14}{'ratio to direct':>18}{peer_col}")
    for r in results.values():
        cpu = _spread([c for _, c in r.rounds]) if r.name != DIRECT else "—"
        ratios = [rate / d for (rate, _), (d, _) in zip(r.rounds, direct.rounds, strict=True)]
        line = f"{r.name:<26}{cpu:>14}{_ratio_spread(ratios):>18}"
        if peer is not None:
            vs = [rate / q for (rate, _), (q, _) in zip(r.rounds, peer.rounds, strict=True)]
            line += f"{_ratio_spread(vs):>14}"
        print(line)


def _ratio_spread(values: list[float]) -> str:
    return f"{min(values):.2f}–{max(values):.2f}" if values else "—"


if __name__ == "__main__":
    main()

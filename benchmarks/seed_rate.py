"""How fast the lab seeds, and how close the loader gets to what HAPI itself can ingest.

    .venv/bin/python benchmarks/seed_rate.py --hapi http://127.0.0.1:8280/fhir \\
        --patients 100 --concurrency 4

Prints, in one run:

1. generation rate: patients/s and resources/s on one core, no server (CPU time), alone and with
   each patient's transaction bundle encoded as the loader sends it;
2. the loader's rate into HAPI (``seed.loader.Loader``: generates, encodes, posts, retries);
3. HAPI's own ingest ceiling: the same kind of bundles, generated and encoded beforehand, posted
   by a minimal loop (httpx, same concurrency, same connection pool, no retries, no accounting);
4. the ratio loader / ceiling in resources per second (target: at least 0.9);
5. the rate of loading the loader's bundles a second time (PUT of identical content).

Fairness: both contenders write *new* patients (HAPI creates rather than updates), drawn from
disjoint index ranges of one population (statistically alike, each its own ids), after a warm-up.
They alternate over ``--rounds`` rounds (loader first in odd rounds, ceiling first in even ones)
so that a server that slows as its database grows, or a neighbour's burst of CPU, does not favour
either; the ratio is over the totals. The index range starts past any patient the server already
holds from an earlier run, so every run writes new patients. This is a benchmark, not a test: it
asserts nothing and writes into the server it is given (use a throwaway HAPI).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from seed import PopulationOptions, generate_population
from seed.ids import patient_id
from seed.jobs import BundleJob, patient_job, patient_jobs, shared_job
from seed.loader import FHIR_HEADERS, Loader, LoadSummary
from seed.population import Population

INDEX_STEP = 100_000  # runs use index ranges starting at multiples of this


@dataclass(frozen=True, slots=True)
class Rate:
    label: str
    patients: int
    resources: int
    seconds: float

    @property
    def resources_per_s(self) -> float:
        return self.resources / self.seconds

    @property
    def patients_per_s(self) -> float:
        return self.patients / self.seconds

    def line(self) -> str:
        return (
            f"{self.label:<26} {self.patients:>6} patients {self.resources:>8} resources "
            f"{self.seconds:>7.1f} s = {self.patients_per_s:>7.1f} patients/s "
            f"{self.resources_per_s:>8.0f} resources/s"
        )


def generation_rates(patients: int, seed: int) -> tuple[Rate, Rate]:
    population = generate_population(PopulationOptions(patients=patients, seed=seed))
    population.record(0)  # Faker pools are built once per process: outside the measurement
    cpu = time.process_time()
    resources = sum(len(r) for r in population.records())
    generate = Rate("generate (1 core)", patients, resources, time.process_time() - cpu)
    cpu = time.process_time()
    encoded = sum(patient_job(r).resources for r in population.records())
    encode = Rate("generate + encode (1 core)", patients, encoded, time.process_time() - cpu)
    return generate, encode


async def ceiling(base_url: str, jobs: Sequence[BundleJob], concurrency: int) -> float:
    """Seconds a minimal loop takes to post ``jobs`` (already encoded): HAPI's ingest ceiling."""
    pending = list(reversed(jobs))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def worker(client: httpx.AsyncClient) -> None:
        while pending:
            job = pending.pop()
            response = await client.post(base_url, content=job.body, headers=FHIR_HEADERS)
            if response.status_code != 200:
                raise SystemExit(f"ceiling loop: {job.name} -> {response.status_code}")

    async with httpx.AsyncClient(limits=limits, timeout=300) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        return time.perf_counter() - started


def run_loader(base_url: str, population: Population, start: int, stop: int, c: int) -> Rate:
    summary: LoadSummary = asyncio.run(
        Loader(base_url, concurrency=c).load([patient_jobs(population, start, stop)])
    )
    if summary.retries:
        print(f"  (loader retried {summary.retries} times)", file=sys.stderr)
    return Rate("loader", summary.patients, summary.resources, summary.seconds)


def run_ceiling(base_url: str, population: Population, start: int, stop: int, c: int) -> Rate:
    jobs = [patient_job(r) for r in population.records(start, stop)]
    seconds = asyncio.run(ceiling(base_url, jobs, c))
    return Rate("ceiling (minimal loop)", len(jobs), sum(j.resources for j in jobs), seconds)


def first_free_index(base_url: str, tenants: int, span: int) -> int:
    """The first multiple of INDEX_STEP whose range holds no patient on the server yet."""
    with httpx.Client(timeout=30) as http:
        start = INDEX_STEP
        while True:
            probes = {patient_id(start, tenants), patient_id(start + span - 1, tenants)}
            found = [
                http.get(f"{base_url}/Patient/{pid}", headers={"Accept": "application/fhir+json"})
                for pid in probes
            ]
            if all(r.status_code in (404, 410) for r in found):
                return start
            start += INDEX_STEP


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--hapi", required=True, help="FHIR base URL, e.g. http://127.0.0.1:8280/fhir"
    )
    parser.add_argument(
        "--patients", type=int, default=100, help="patients per contender and round"
    )
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=20, help="patients posted first, untimed")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--generate", type=int, default=2000, help="patients for the generation rate"
    )
    args = parser.parse_args(argv)
    base, n, c = args.hapi.rstrip("/"), args.patients, args.concurrency

    print(f"seed_rate: {os.cpu_count()} CPUs, load average {_load()} at start")
    for rate in generation_rates(args.generate, args.seed):
        print(rate.line())

    span = args.warmup + 2 * args.rounds * n
    start = first_free_index(base, 2, span)
    population = generate_population(PopulationOptions(patients=start + span, seed=args.seed))
    print(
        f"HAPI {base}: {n} new patients per contender and round, concurrency {c}, "
        f"{args.rounds} rounds, patient indexes {start}..{start + span - 1}"
    )
    asyncio.run(ceiling(base, [shared_job(population)], 1))
    warm = start + args.warmup
    asyncio.run(ceiling(base, [patient_job(r) for r in population.records(start, warm)], c))

    loader_rates: list[Rate] = []
    ceiling_rates: list[Rate] = []
    cursor = warm
    for round_no in range(1, args.rounds + 1):
        a, b, cursor = (cursor, cursor + n), (cursor + n, cursor + 2 * n), cursor + 2 * n
        if round_no % 2:
            loader_rates.append(run_loader(base, population, *a, c))
            ceiling_rates.append(run_ceiling(base, population, *b, c))
        else:
            ceiling_rates.append(run_ceiling(base, population, *a, c))
            loader_rates.append(run_loader(base, population, *b, c))
        ratio = loader_rates[-1].resources_per_s / ceiling_rates[-1].resources_per_s
        print(f"round {round_no} (ratio {ratio:.2f}):")
        print("  " + loader_rates[-1].line())
        print("  " + ceiling_rates[-1].line())

    loader_total = _total("loader, all rounds", loader_rates)
    ceiling_total = _total("ceiling, all rounds", ceiling_rates)
    print(loader_total.line())
    print(ceiling_total.line())
    ratio = loader_total.resources_per_s / ceiling_total.resources_per_s
    rounds = sorted(
        lr.resources_per_s / cr.resources_per_s
        for lr, cr in zip(loader_rates, ceiling_rates, strict=True)
    )
    print(
        f"ratio loader/ceiling (resources/s): {ratio:.2f} over all rounds "
        f"(per round {rounds[0]:.2f}..{rounds[-1]:.2f}; target >= 0.90)"
    )

    again = run_loader(base, population, warm, warm + n, c)
    print(Rate("re-load, identical PUTs", again.patients, again.resources, again.seconds).line())
    print(f"load average {_load()} at end")


def _total(label: str, rates: list[Rate]) -> Rate:
    return Rate(
        label,
        sum(r.patients for r in rates),
        sum(r.resources for r in rates),
        sum(r.seconds for r in rates),
    )


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


if __name__ == "__main__":
    main()

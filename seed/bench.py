"""Measure generation speed on one core: ``python -m seed.bench [patients] [--write DIR]``.

Reports CPU time (``time.process_time``: what one core spends, robust to a busy machine) and
wall time. With ``--write DIR`` it also times ``write_population`` (NDJSON + bundles).
"""

from __future__ import annotations

import argparse
import tempfile
import time

from seed.options import PopulationOptions
from seed.population import generate_population
from seed.writers import write_population


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m seed.bench", description=__doc__)
    parser.add_argument("patients", type=int, nargs="?", default=5000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--write", metavar="DIR", help="also time writing NDJSON + bundles")
    args = parser.parse_args(argv)

    population = generate_population(PopulationOptions(patients=args.patients, seed=args.seed))
    population.record(0)  # build the Faker pools outside the measurement
    cpu, wall = time.process_time(), time.perf_counter()
    resources = sum(len(record) for record in population.records())
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    n = args.patients
    print(
        f"generate: {n} patients, {resources} resources ({resources / n:.1f}/patient); "
        f"CPU {cpu:.2f} s = {n / cpu:.0f} patients/s, {resources / cpu:.0f} resources/s; "
        f"wall {wall:.2f} s = {n / wall:.0f} patients/s"
    )
    if args.write:
        target = tempfile.mkdtemp(prefix="seed-bench-", dir=args.write)
        cpu, wall = time.process_time(), time.perf_counter()
        write_population(population, target)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        print(
            f"generate + write NDJSON and bundles to {target}: CPU {cpu:.2f} s = "
            f"{n / cpu:.0f} patients/s; wall {wall:.2f} s = {n / wall:.0f} patients/s"
        )


if __name__ == "__main__":
    main()

"""Load a population into a FHIR server (HAPI, directly): transaction bundles, concurrently.

Every entry is ``PUT Type/id``, so a load is idempotent and resumable: run it again after a
failure or an interrupt and the server ends up with the same data. Bundles go out phase by phase
(shared → patients → Groups, see ``seed.jobs``); inside a phase, ``concurrency`` workers share one
keep-alive connection pool. Transient failures (network, 5xx, 408/409/412/429) are retried with
backoff a bounded number of times; anything else stops the load with a ``LabError`` that names the
server, the bundle, the resource when the server's OperationOutcome says which, and its words.

A bundle counts as loaded only once the server answered ``200`` with a transaction-response
(a FHIR transaction is all-or-nothing), and a summary is returned only when every bundle is in:
nothing half-written is ever reported as done.

>>> summary = load_population(generate_population(PopulationOptions(patients=20, seed=7)),
...                           "http://127.0.0.1:8280/fhir")                  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import httpx

from labcore.errors import LabError
from seed import outcome
from seed.counts import SEEDED_TYPES, count_on_server
from seed.jobs import BundleJob, Phase, population_phases
from seed.population import Population, Summary, SummaryBuilder
from seed.retry import RetryPolicy, is_transient_status, retry_after_seconds

__all__ = [
    "SEEDED_TYPES",
    "BundleRejected",
    "LoadProgress",
    "LoadSummary",
    "Loader",
    "ServerUnreachable",
    "aload_population",
    "count_on_server",
    "load_population",
]

DEFAULT_CONCURRENCY = 4
FHIR_HEADERS = {
    "Content-Type": "application/fhir+json; charset=utf-8",
    "Accept": "application/fhir+json",
    "Prefer": "return=minimal",
}
HAPI_HINT = "start the lab with `fhirlab up` (or check `fhirlab status`)"


@dataclass(frozen=True, slots=True)
class LoadProgress:
    """A snapshot of a running load; only bundles the server accepted are counted."""

    patients: int
    patients_total: int | None
    resources: int
    bundles: int
    retries: int
    seconds: float

    @property
    def patients_per_s(self) -> float:
        return self.patients / self.seconds if self.seconds > 0 else 0.0

    @property
    def resources_per_s(self) -> float:
        return self.resources / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True, slots=True)
class LoadSummary:
    """A finished load: what the server accepted, how long it took, how often it was retried."""

    server: str
    patients: int
    resources: int
    bundles: int
    retries: int
    seconds: float
    concurrency: int
    population: Summary | None = None  # the generator's summary, when a whole population loaded

    @property
    def patients_per_s(self) -> float:
        return self.patients / self.seconds if self.seconds > 0 else 0.0

    @property
    def resources_per_s(self) -> float:
        return self.resources / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "server": self.server,
            "patients": self.patients,
            "resources": self.resources,
            "bundles": self.bundles,
            "retries": self.retries,
            "seconds": round(self.seconds, 2),
            "concurrency": self.concurrency,
            "patients_per_s": round(self.patients_per_s, 1),
            "resources_per_s": round(self.resources_per_s, 1),
        }


ProgressFn = Callable[[LoadProgress], None]
SleepFn = Callable[[float], Awaitable[None]]


class BundleRejected(LabError):
    """The server refused a bundle for a reason a retry cannot fix (or kept failing it)."""

    def __init__(
        self, server: str, job: BundleJob, status: int, resource: str | None, reason: str,
        attempts: int,
    ) -> None:  # fmt: skip
        where = f" at {resource}" if resource else ""
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        super().__init__(
            f"HAPI FHIR at {server} rejected {job.subject}{where} ({status}{tries}): {reason}",
            "nothing of this bundle was written (transactions are all-or-nothing); fix the cause "
            "(see `fhirlab logs hapi`) and run the same `fhirlab seed` again: it resumes",
        )
        self.server = server
        self.bundle = job.name
        self.status = status
        self.resource = resource
        self.reason = reason


class ServerUnreachable(LabError):
    """The server could not be reached (or kept dropping the connection) within the retries."""


class Loader:
    """Posts bundle jobs to one FHIR base URL, phase by phase, ``concurrency`` at a time."""

    def __init__(
        self,
        base_url: str,
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        retry: RetryPolicy | None = None,
        timeout_s: float = 300.0,
        on_progress: ProgressFn | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: SleepFn = asyncio.sleep,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1; got {concurrency}")
        self.base_url = base_url.rstrip("/")
        self.concurrency = concurrency
        self.retry = retry or RetryPolicy()
        self.timeout_s = timeout_s
        self.on_progress = on_progress
        self._transport = transport
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._clock = clock
        self._reset(None)

    def _reset(self, patients_total: int | None) -> None:
        self.patients = self.resources = self.bundles = self.retries = 0
        self.patients_total = patients_total
        self._started = self._clock()

    def progress(self) -> LoadProgress:
        return LoadProgress(
            patients=self.patients,
            patients_total=self.patients_total,
            resources=self.resources,
            bundles=self.bundles,
            retries=self.retries,
            seconds=self._clock() - self._started,
        )

    async def load(self, phases: Sequence[Phase], patients_total: int | None = None) -> LoadSummary:
        """Post every job of every phase; returns only when the server accepted them all."""
        self._reset(patients_total)
        limits = httpx.Limits(
            max_connections=self.concurrency, max_keepalive_connections=self.concurrency
        )
        async with httpx.AsyncClient(
            limits=limits,
            timeout=httpx.Timeout(self.timeout_s, connect=10.0),
            transport=self._transport,
        ) as client:
            for phase in phases:
                await self._run_phase(client, phase)
        progress = self.progress()
        return LoadSummary(
            server=self.base_url,
            patients=progress.patients,
            resources=progress.resources,
            bundles=progress.bundles,
            retries=progress.retries,
            seconds=progress.seconds,
            concurrency=self.concurrency,
        )

    async def _run_phase(self, client: httpx.AsyncClient, phase: Phase) -> None:
        queue: asyncio.Queue[BundleJob | None] = asyncio.Queue(maxsize=2 * self.concurrency)

        async def produce() -> None:
            for job in phase:  # generates and encodes the next bundle only when there is room
                await queue.put(job)
            for _ in range(self.concurrency):
                await queue.put(None)

        async def work() -> None:
            while (job := await queue.get()) is not None:
                await self._post(client, job)
                self.patients += job.patients
                self.resources += job.resources
                self.bundles += 1
                self._report()

        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(produce())
                for _ in range(self.concurrency):
                    group.create_task(work())
        except* LabError as failures:
            first = failures.exceptions[0]
            raise first from None  # the first refusal, as itself (not wrapped in a group)

    async def _post(self, client: httpx.AsyncClient, job: BundleJob) -> None:
        attempts = self.retry.attempts
        for attempt in range(1, attempts + 1):
            retry_after: float | None = None
            try:
                response = await client.post(self.base_url, content=job.body, headers=FHIR_HEADERS)
            except httpx.TransportError as exc:  # network trouble: always worth another try
                if attempt == attempts:
                    raise self._unreachable(job, exc, attempts) from exc
            else:
                status = response.status_code
                if status == 200 and b'"transaction-response"' in response.content:
                    return
                if status == 200:
                    raise BundleRejected(
                        self.base_url, job, status, None,
                        "the answer is not a transaction-response Bundle; is this the base URL "
                        "of a FHIR server?", attempt,
                    )  # fmt: skip
                if not is_transient_status(status) or attempt == attempts:
                    resource = outcome.locate(response, job.body)
                    reason = outcome.diagnostics(response)
                    raise BundleRejected(self.base_url, job, status, resource, reason, attempt)
                retry_after = retry_after_seconds(response)
            self.retries += 1
            self._report()
            await self._sleep(self.retry.delay(attempt, self._rng, retry_after))

    def _unreachable(self, job: BundleJob, exc: httpx.TransportError, attempts: int) -> LabError:
        kind = exc.__class__.__name__
        if isinstance(exc, httpx.ConnectError):
            return ServerUnreachable(
                f"HAPI FHIR at {self.base_url} is unreachable ({kind})", HAPI_HINT
            )
        return ServerUnreachable(
            f"HAPI FHIR at {self.base_url} failed {job.subject} {attempts} times ({kind}: {exc})",
            "HAPI may be overloaded: lower --concurrency, or give it more memory "
            "(FHIRLAB_HAPI_HEAP); `fhirlab logs hapi` shows what it did",
        )

    def _report(self) -> None:
        if self.on_progress is not None:
            self.on_progress(self.progress())


async def aload_population(
    population: Population, base_url: str, **loader_options: Any
) -> LoadSummary:
    """Load a whole population (shared, patients, Groups); the summary includes the generator's."""
    builder = SummaryBuilder(population)
    loader = Loader(base_url, **loader_options)
    phases = population_phases(population, on_record=builder.add_record)
    summary = await loader.load(phases, patients_total=len(population))
    return _with_population(summary, builder.build())


def load_population(population: Population, base_url: str, **loader_options: Any) -> LoadSummary:
    """Synchronous ``aload_population`` (runs its own event loop)."""
    return asyncio.run(aload_population(population, base_url, **loader_options))


def _with_population(summary: LoadSummary, population: Summary) -> LoadSummary:
    return replace(summary, population=population)

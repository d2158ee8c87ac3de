"""The loader against a simulated HAPI (httpx.MockTransport): order, retries, accounting, errors."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from seed import PopulationOptions, generate_population
from seed.jobs import BundleJob, group_jobs, patient_jobs, shared_job
from seed.loader import (
    BundleRejected,
    Loader,
    LoadProgress,
    LoadSummary,
    ServerUnreachable,
    aload_population,
)
from seed.population import Population
from seed.retry import RetryPolicy, is_transient_status, retry_after_seconds

BASE = "http://hapi.test/fhir"
OK_BODY = {"resourceType": "Bundle", "type": "transaction-response", "entry": []}

Handler = Callable[[httpx.Request], httpx.Response]


def ok(_: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json=OK_BODY)


def outcome(status: int, diagnostics: str, **issue: Any) -> httpx.Response:
    body = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "processing", "diagnostics": diagnostics, **issue}],
    }
    return httpx.Response(status, json=body)


def subject_of(request: httpx.Request) -> str:
    """The first entry's url of a posted bundle: which bundle this request carries."""
    return str(json.loads(request.content)["entry"][0]["request"]["url"])


@pytest.fixture(scope="module")
def small() -> Population:
    return generate_population(PopulationOptions(patients=12, seed=7, tenants=2))


class Run:
    """One loader run against a handler; records sleeps and progress snapshots."""

    def __init__(self, handler: Handler, concurrency: int = 4, attempts: int = 4) -> None:
        self.sleeps: list[float] = []
        self.snapshots: list[LoadProgress] = []
        self.requests: list[httpx.Request] = []

        def recording(request: httpx.Request) -> httpx.Response:
            self.requests.append(request)
            return handler(request)

        async def sleep(seconds: float) -> None:
            self.sleeps.append(seconds)

        self.loader = Loader(
            BASE,
            concurrency=concurrency,
            retry=RetryPolicy(attempts=attempts, base_s=0.5, cap_s=4.0),
            transport=httpx.MockTransport(recording),
            sleep=sleep,
            rng=random.Random(1),
            on_progress=self.snapshots.append,
        )

    def load(self, population: Population) -> LoadSummary:
        phases = [[shared_job(population)], patient_jobs(population), group_jobs(population)]
        return asyncio.run(self.loader.load(phases, patients_total=len(population)))


# ---- retry classification and backoff -----------------------------------------------------


@pytest.mark.parametrize("status", [408, 409, 412, 425, 429, 500, 502, 503, 504])
def test_transient_statuses_are_retried(status: int) -> None:
    assert is_transient_status(status)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 410, 413, 415, 422])
def test_request_errors_are_permanent(status: int) -> None:
    assert not is_transient_status(status)


def test_backoff_doubles_with_jitter_and_is_capped() -> None:
    policy = RetryPolicy(attempts=10, base_s=0.5, cap_s=4.0)
    rng = random.Random(3)
    for retry, nominal in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 4.0), (9, 4.0)]:
        delay = policy.delay(retry, rng)
        assert nominal * 0.5 <= delay <= nominal


def test_retry_after_raises_the_wait_but_never_past_the_cap() -> None:
    policy = RetryPolicy(base_s=0.5, cap_s=4.0)
    assert policy.delay(1, random.Random(0), retry_after=3.0) == 3.0
    assert policy.delay(1, random.Random(0), retry_after=60.0) == 4.0
    assert retry_after_seconds(httpx.Response(429, headers={"Retry-After": "2"})) == 2.0
    dated = httpx.Response(429, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    assert retry_after_seconds(dated) is None
    assert retry_after_seconds(httpx.Response(429)) is None


def test_retry_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="attempts"):
        RetryPolicy(attempts=0)
    with pytest.raises(ValueError, match="start at 1"):
        RetryPolicy().delay(0, random.Random())


# ---- order and accounting -----------------------------------------------------------------


def test_shared_first_patients_between_groups_last(small: Population) -> None:
    run = Run(ok)
    run.load(small)
    order = [subject_of(r) for r in run.requests]
    assert order[0] == "Organization/org-a"
    assert order[-2:] == ["Group/grp-a", "Group/grp-b"]
    assert sorted(order[1:-2]) == sorted(f"Patient/{p}" for p in small.patient_ids())


def test_requests_are_fhir_json_posted_to_the_base(small: Population) -> None:
    run = Run(ok)
    run.load(small)
    request = run.requests[1]
    assert request.method == "POST"
    assert str(request.url) == BASE
    assert request.headers["Content-Type"].startswith("application/fhir+json")
    bundle = json.loads(request.content)
    assert bundle["type"] == "transaction"
    assert all(e["request"]["method"] == "PUT" for e in bundle["entry"])


def test_progress_counts_only_accepted_bundles(small: Population) -> None:
    run = Run(ok)
    summary = run.load(small)
    resources = sum(len(r) for r in small.records())
    shared = len(small.shared_resources()) + len(small.groups())
    assert (summary.patients, summary.resources) == (12, resources + shared)
    assert summary.bundles == 1 + 12 + 2 and summary.retries == 0
    patients = [s.patients for s in run.snapshots]
    assert patients == sorted(patients) and patients[-1] == 12
    assert [s.bundles for s in run.snapshots] == list(range(1, 16))
    assert all(s.patients_total == 12 for s in run.snapshots)


def test_rates_are_counts_over_elapsed_seconds() -> None:
    progress = LoadProgress(
        patients=10, patients_total=20, resources=400, bundles=11, retries=0, seconds=4.0
    )
    assert (progress.patients_per_s, progress.resources_per_s) == (2.5, 100.0)
    zero = LoadProgress(0, None, 0, 0, 0, 0.0)
    assert (zero.patients_per_s, zero.resources_per_s) == (0.0, 0.0)


def test_whole_population_load_carries_the_generator_summary(small: Population) -> None:
    summary = asyncio.run(aload_population(small, BASE, transport=httpx.MockTransport(ok)))
    assert summary.population == small.summary()
    assert summary.resources == small.summary().total_resources
    assert summary.to_dict()["patients"] == 12


def test_concurrency_must_be_positive() -> None:
    with pytest.raises(ValueError, match="concurrency"):
        Loader(BASE, concurrency=0)


# ---- retries ------------------------------------------------------------------------------


def flaky(failures: dict[str, list[httpx.Response]]) -> Handler:
    """Answers the queued responses for a bundle (by its first entry) first, then 200."""

    def handler(request: httpx.Request) -> httpx.Response:
        queued = failures.get(subject_of(request))
        return queued.pop(0) if queued else ok(request)

    return handler


def test_transient_failures_are_retried_with_backoff(small: Population) -> None:
    conflict = outcome(409, "HAPI-0550: version conflict")
    busy = httpx.Response(503, text="busy")
    throttled = httpx.Response(429, headers={"Retry-After": "3"})
    run = Run(flaky({"Patient/pat-a-000002": [conflict, busy], "Group/grp-b": [throttled]}))
    summary = run.load(small)
    assert summary.retries == 3 and summary.patients == 12
    assert len(run.requests) == 15 + 3
    assert 3.0 in run.sleeps  # Retry-After honoured
    assert all(0 < s <= 4.0 for s in run.sleeps)
    assert run.snapshots[-1].retries == 3


def test_network_errors_are_retried(small: Population) -> None:
    calls = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] <= 2:
            raise httpx.ConnectError("refused", request=request)
        return ok(request)

    summary = Run(handler).load(small)
    assert summary.retries == 2 and summary.bundles == 15


def test_retries_are_bounded_then_the_load_stops(small: Population) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if subject_of(request) == "Patient/pat-b-000003":
            return outcome(500, "HAPI-9999: database is locked")
        return ok(request)

    run = Run(handler, attempts=4)
    with pytest.raises(BundleRejected) as caught:
        run.load(small)
    failed = [r for r in run.requests if subject_of(r) == "Patient/pat-b-000003"]
    assert len(failed) == 4
    message = str(caught.value)
    assert "patient pat-b-000003" in message and "after 4 attempts" in message
    assert "database is locked" in message
    assert not any(subject_of(r).startswith("Group/") for r in run.requests)


def test_unreachable_server_names_the_url_and_the_fix(small: Population) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("Connection refused", request=request)

    run = Run(refuse, attempts=3)
    with pytest.raises(ServerUnreachable) as caught:
        run.load(small)
    assert caught.value.message == f"HAPI FHIR at {BASE} is unreachable (ConnectError)"
    assert "fhirlab up" in caught.value.hint
    assert len(run.requests) == 3 and run.snapshots[-1].bundles == 0


def test_timeouts_that_persist_suggest_lower_concurrency(small: Population) -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    with pytest.raises(ServerUnreachable) as caught:
        Run(slow, attempts=2).load(small)
    assert "the shared bundle 2 times (ReadTimeout" in caught.value.message
    assert "--concurrency" in caught.value.hint


# ---- permanent errors ---------------------------------------------------------------------


def test_rejected_bundle_names_server_patient_resource_and_reason(small: Population) -> None:
    record = small.record(5)
    observation = next(r for r in record.resources if r["resourceType"] == "Observation")
    diagnostics = (
        "HAPI-1094: Resource Practitioner/prac-z-001 not found, specified in path: "
        "Observation.performer"
    )

    def handler(request: httpx.Request) -> httpx.Response:
        if subject_of(request) == f"Patient/{record.patient_id}":
            return outcome(400, diagnostics)
        return ok(request)

    # make the bundle actually carry that reference, as the diagnostics say
    broken = dict(observation, performer=[{"reference": "Practitioner/prac-z-001"}])
    resources = [broken if r is observation else r for r in record.resources]
    job = BundleJob.of("1-patient-x", f"the bundle of patient {record.patient_id}", resources, 1)
    run = Run(handler)
    with pytest.raises(BundleRejected) as caught:
        asyncio.run(run.loader.load([[job]]))
    error = caught.value
    assert error.message == (
        f"HAPI FHIR at {BASE} rejected the bundle of patient {record.patient_id} at "
        f"Observation/{observation['id']} (400): {diagnostics}"
    )
    assert error.resource == f"Observation/{observation['id']}"
    assert "all-or-nothing" in error.hint and "resumes" in error.hint
    assert run.sleeps == [] and len(run.requests) == 1  # a 400 is never retried
    assert run.snapshots == []  # nothing reported as done


def test_permanent_error_stops_the_remaining_bundles(small: Population) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if subject_of(request) == "Patient/pat-a-000000":
            return outcome(422, "HAPI-0450: Failed to parse request body")
        return ok(request)

    run = Run(handler, concurrency=1)
    with pytest.raises(BundleRejected, match="patient pat-a-000000"):
        run.load(small)
    assert [subject_of(r) for r in run.requests] == ["Organization/org-a", "Patient/pat-a-000000"]
    assert run.snapshots[-1].patients == 0


def test_a_200_that_is_not_a_transaction_response_is_an_error(small: Population) -> None:
    run = Run(lambda _: httpx.Response(200, text="<html>login</html>"))
    with pytest.raises(BundleRejected, match="not a transaction-response"):
        run.load(small)


def test_non_fhir_error_bodies_are_quoted(small: Population) -> None:
    run = Run(lambda _: httpx.Response(404, text="<h1>Not   Found</h1>\n"))
    with pytest.raises(BundleRejected) as caught:
        run.load(small)
    assert caught.value.message.endswith("the shared bundle (404): <h1>Not Found</h1>")

"""Stage `operations`: bulk export only for allowlisted backend clients (C04); other restricted
operations only for their allowlist, and `_count` capped (C12)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.classify import OPERATION
from gateway.policy import OperationsPolicy
from gateway.stages.operations import OperationsStage
from tests.unit.gateway.stage_kit import context, passes, refusal, verified

EXPORTER = "population-analytics"
TRUSTED = "care-team-app"
POLICY = OperationsPolicy(
    export_clients=(EXPORTER,),
    restricted=("$everything", "$validate", "$export", "$expunge"),
    restricted_clients=(TRUSTED,),
    max_count=200,
)
STAGE = OperationsStage(POLICY)
BACKEND = "system/*.rs"
PATIENT = "launch/patient patient/*.rs"


def test_checks_name_their_controls() -> None:
    assert [control for control, _ in STAGE.checks()] == ["C04", "C12", "C12"]


# -- C04: bulk export ---------------------------------------------------------------------------

EXPORT_FLOW = [
    ("GET", "$export", "_type=Patient"),
    ("GET", "Patient/$export", ""),
    ("POST", "Group/g-1/$export", ""),
    ("GET", "$export-poll-status", "_jobId=abc"),
    ("DELETE", "$export-poll-status", "_jobId=abc"),  # cancelling a job is part of it
    ("GET", "Binary/out-1", ""),  # an output file
    ("GET", "Binary/out-1/_history/1", ""),
]


@pytest.mark.parametrize(("method", "path", "query"), EXPORT_FLOW)
def test_the_export_flow_is_refused_for_a_client_not_on_the_allowlist(
    method: str, path: str, query: str
) -> None:
    ctx = context(method, path, query, token=verified(BACKEND, "scheduler"))
    denial = refusal(STAGE.export, ctx, 403, "C04")
    assert denial.reason == "bulk $export is not allowed for client 'scheduler'"


@pytest.mark.parametrize(("method", "path", "query"), EXPORT_FLOW)
def test_the_export_flow_passes_for_an_allowlisted_backend_client(
    method: str, path: str, query: str
) -> None:
    passes(STAGE.export, context(method, path, query, token=verified(BACKEND, EXPORTER)))


@pytest.mark.parametrize(("method", "path", "query"), EXPORT_FLOW)
def test_an_allowlisted_client_needs_a_backend_services_token(
    method: str, path: str, query: str
) -> None:
    ctx = context(method, path, query, token=verified(PATIENT, EXPORTER))
    denial = refusal(STAGE.export, ctx, 403, "C04")
    assert "backend-services token" in denial.reason


def test_an_export_without_a_token_is_refused() -> None:
    refusal(STAGE.export, context("GET", "$export", token=None), 403, "C04")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "Patient/p-1"),
        ("GET", "Binary"),  # a search of Binary is not an export output read
        ("GET", "Patient/p-1/$everything"),
        ("POST", "Binary"),
        ("GET", "metadata"),
    ],
)
def test_other_requests_are_not_c04s_business(method: str, path: str) -> None:
    passes(STAGE.export, context(method, path, token=verified(PATIENT, "scheduler")))


@settings(max_examples=200, deadline=None)
@given(client=st.text(max_size=40).filter(lambda c: c != EXPORTER))
def test_no_other_client_id_may_export(client: str) -> None:
    ctx = context("GET", "$export", token=verified(BACKEND, client))
    refusal(STAGE.export, ctx, 403, "C04")


@pytest.mark.parametrize("client", [EXPORTER.upper(), EXPORTER + " ", " " + EXPORTER, ""])
def test_the_export_allowlist_matches_exactly(client: str) -> None:
    refusal(STAGE.export, context("GET", "$export", token=verified(BACKEND, client)), 403, "C04")


# -- C12: restricted operations -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "Patient/p-1/$everything"),
        ("GET", "Patient/$everything"),
        ("POST", "Observation/$validate"),
        ("POST", "Observation/o-1/_history/2/$validate"),
        ("POST", "$expunge"),
    ],
)
def test_a_restricted_operation_is_refused_for_a_client_not_on_its_allowlist(
    method: str, path: str
) -> None:
    ctx = context(method, path, token=verified(PATIENT, "scheduler"))
    denial = refusal(STAGE.dangerous, ctx, 403, "C12")
    assert "is restricted; client 'scheduler' is not allowed" in denial.reason
    passes(STAGE.dangerous, context(method, path, token=verified(PATIENT, TRUSTED)))


def test_a_restricted_operation_without_a_token_is_refused() -> None:
    refusal(STAGE.dangerous, context("GET", "Patient/p-1/$everything"), 403, "C12")


def test_export_is_left_to_c04() -> None:
    # `$export` is in the restricted list, but the export flow has its own allowlist (C04)
    passes(STAGE.dangerous, context("GET", "$export", token=verified(BACKEND, EXPORTER)))


@pytest.mark.parametrize("path", ["Observation/$lastn", "Patient/p-1/$meta", "$meta"])
def test_an_operation_not_restricted_passes(path: str) -> None:
    passes(STAGE.dangerous, context("GET", path, token=verified(PATIENT, "scheduler")))


_OPERATIONS = st.one_of(
    st.sampled_from((*POLICY.restricted, "$export-poll-status", "$lastn", "$meta")),
    st.from_regex(OPERATION, fullmatch=True),
)


@settings(max_examples=300, deadline=None)
@given(
    operation=_OPERATIONS,
    where=st.sampled_from(["{op}", "Patient/{op}", "Patient/p-1/{op}"]),
    client=st.sampled_from(["scheduler", TRUSTED, EXPORTER, ""]),
)
def test_any_operation_is_refused_exactly_when_restricted_and_not_allowlisted(
    operation: str, where: str, client: str
) -> None:
    ctx = context("POST", where.format(op=operation), token=verified(PATIENT, client))
    restricted = operation in POLICY.restricted and operation != "$export"
    if restricted and client != TRUSTED:
        refusal(STAGE.dangerous, ctx, 403, "C12")
    else:
        passes(STAGE.dangerous, ctx)


# -- C12: _count capped -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "query", "sent"),
    [
        ("Observation", "_count=1000&code=x", (("_count", "200"), ("code", "x"))),
        ("Observation/_search", "_count=201", (("_count", "200"),)),
        ("", "_count=999999999", (("_count", "200"),)),
        ("Patient/p-1/Observation", "_count=500", (("_count", "200"),)),
        ("Observation", "_count=10&_count=5000", (("_count", "10"), ("_count", "200"))),
    ],
)
def test_a_search_count_over_the_maximum_is_capped(
    path: str, query: str, sent: tuple[tuple[str, str], ...]
) -> None:
    ctx = passes(STAGE.cap_count, context("GET", path, query, token=verified()))
    assert ctx.upstream_params == sent


@pytest.mark.parametrize(
    "path", ["_history", "Observation/_history", "Patient/p-1/_history", "Patient/p-1/$everything"]
)
def test_a_count_is_capped_on_every_request_that_pages(path: str) -> None:
    ctx = passes(STAGE.cap_count, context("GET", path, "_count=5000", token=verified()))
    assert ctx.upstream_params == (("_count", "200"),)


@pytest.mark.parametrize("query", ["_count=200", "_count=0", "_count=20&code=x", "code=x", ""])
def test_a_search_count_within_the_maximum_is_left_alone(query: str) -> None:
    ctx = passes(STAGE.cap_count, context("GET", "Observation", query, token=verified()))
    assert ctx.upstream_params is None


def test_the_cap_applies_to_the_parameters_an_earlier_stage_set() -> None:
    ctx = context("GET", "Observation", "_count=5000", token=verified())
    ctx.upstream_params = (("_count", "5000"), ("patient", "Patient/pat-1"))  # C08's narrowing
    passes(STAGE.cap_count, ctx)
    assert ctx.upstream_params == (("_count", "200"), ("patient", "Patient/pat-1"))


@settings(max_examples=200, deadline=None)
@given(
    counts=st.lists(st.integers(min_value=0, max_value=999_999_999), min_size=1, max_size=4),
    other=st.lists(st.sampled_from(["code=x", "status=final", "_sort=date"]), max_size=3),
)
def test_no_count_sent_upstream_exceeds_the_maximum(counts: list[int], other: list[str]) -> None:
    query = "&".join([*(f"_count={n}" for n in counts), *other])
    ctx = passes(STAGE.cap_count, context("GET", "Observation", query, token=verified()))
    sent = ctx.params
    assert [int(v) for k, v in sent if k == "_count"] == [min(n, 200) for n in counts]
    assert [k + "=" + v for k, v in sent if k != "_count"] == other


@pytest.mark.parametrize("operation", ["$Everything", "$EVERYTHING", "$EXPORT", "$Export"])
def test_operation_names_are_matched_without_case(operation: str) -> None:
    ctx = context("GET", f"Patient/p-1/{operation}", token=verified(client_id="someone"))
    control = "C04" if operation.lower() == "$export" else "C12"
    check = STAGE.export if control == "C04" else STAGE.dangerous
    refusal(check, ctx, 403, control)

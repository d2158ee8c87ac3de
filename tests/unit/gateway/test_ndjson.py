"""Bulk-export output checked line by line (gateway/ndjson.py), the same content read as a
Binary resource, and response checks of a control in monitor mode."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.context import RequestContext
from gateway.controls import Mode
from gateway.denial import Denial
from gateway.ndjson import NdjsonChecker, is_ndjson
from gateway.pipeline import Pipeline
from gateway.recorder import to_record
from gateway.screen import Screened, resources_of, screen
from gateway.stages.tenant import TENANT_TAG_SYSTEM, SameTenant, TenantStage
from tests.unit.gateway.test_stage_tenant import request


def patient(pid: str, tenant: str | None) -> dict[str, Any]:
    meta = {"tag": [{"system": TENANT_TAG_SYSTEM, "code": tenant}]} if tenant else {}
    return {"resourceType": "Patient", "id": pid, "meta": meta}


def ndjson(*resources: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in resources)


def ctx_with(*checks: Any, monitor: tuple[Any, ...] = ()) -> RequestContext:
    ctx = RequestContext(request_id="r", method="GET", raw_path="/fhir/Binary/x", raw_query="")
    ctx.resource_checks.extend(("C10", c) for c in checks)
    ctx.monitor_checks.extend(("C10", c) for c in monitor)
    return ctx


FILE = ndjson(patient("a1", "a"), patient("b1", "b"), patient("a2", "a"), patient("n", None))


def run(checker: NdjsonChecker, body: bytes, size: int) -> bytes:
    parts = [checker.feed(body[i : i + size]) for i in range(0, len(body), size)]
    return b"".join(parts) + checker.end()


@pytest.mark.parametrize("size", [1, 7, 64, len(FILE)])
def test_lines_of_another_tenant_are_withheld_however_the_stream_is_cut(size: int) -> None:
    ctx = ctx_with(SameTenant("a"))
    out = run(NdjsonChecker(ctx), FILE, size)
    assert [json.loads(line)["id"] for line in out.splitlines()] == ["a1", "a2"]
    assert ctx.patients == {"a1", "a2"} and ctx.result_count == 2
    (finding,) = ctx.findings
    assert (finding.control, finding.action) == ("C10", "filter")
    assert finding.reason.startswith("withheld 2 of 4 resources of this export file")
    assert "Patient/b1 belongs to tenant b" in finding.reason
    record = to_record(ctx, 1.0)
    assert (record.decision, record.control) == ("filter", "C10")
    assert record.patients == ("a1", "a2")


def test_a_gzip_stream_is_inflated_and_a_last_line_without_newline_is_checked() -> None:
    ctx = ctx_with(SameTenant("a"))
    body = gzip.compress(FILE.rstrip(b"\n"))
    out = run(NdjsonChecker(ctx, b"gzip"), body, 10)
    assert [json.loads(line)["id"] for line in out.splitlines()] == ["a1", "a2"]


def test_without_checks_every_line_goes_out_and_is_counted() -> None:
    ctx = ctx_with()  # the audit alone: count, withhold nothing
    body = FILE + b"not json\n"
    assert run(NdjsonChecker(ctx), body, 5) == body
    assert ctx.patients == {"a1", "b1", "a2", "n"} and ctx.result_count == 5
    assert ctx.findings == []


def test_a_line_that_cannot_be_read_is_withheld_when_a_check_applies() -> None:
    ctx = ctx_with(SameTenant("a"))
    out = run(NdjsonChecker(ctx), ndjson(patient("a1", "a")) + b"{broken\n[1]\n", 4)
    assert out == ndjson(patient("a1", "a"))
    assert ctx.findings[0].reason.startswith("withheld 2 of 3")


def test_a_monitored_check_records_and_withholds_nothing() -> None:
    ctx = ctx_with(monitor=(SameTenant("a"),))
    assert run(NdjsonChecker(ctx), FILE, 9) == FILE
    assert [(f.control, f.action) for f in ctx.findings] == [("C10", "monitor")]
    assert to_record(ctx, 1.0).decision == "monitor"


def test_an_encoding_the_gateway_cannot_read_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot read a br body"):
        NdjsonChecker(ctx_with(), b"br")


def test_ndjson_content_types() -> None:
    assert is_ndjson(b"application/fhir+ndjson")
    assert is_ndjson(b"Application/NDJSON; charset=utf-8")
    assert not is_ndjson(b"application/fhir+json") and not is_ndjson(None)


@given(st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=30))
def test_any_cut_of_the_stream_gives_the_same_answer(cuts: list[int]) -> None:
    whole_ctx, cut_ctx = ctx_with(SameTenant("a")), ctx_with(SameTenant("a"))
    once = NdjsonChecker(whole_ctx)
    whole = once.feed(FILE) + once.end()
    checker, out, at = NdjsonChecker(cut_ctx), b"", 0
    for size in cuts:
        out += checker.feed(FILE[at : at + size])
        at += size
    out += checker.feed(FILE[at:]) + checker.end()
    assert out == whole
    assert cut_ctx.patients == {"a1", "a2"}


# -- the same file asked for as a Binary resource (Accept: application/fhir+json) ---------------


def binary(data: bytes, content_type: str = "application/fhir+ndjson") -> dict[str, Any]:
    return {
        "resourceType": "Binary",
        "contentType": content_type,
        "data": base64.b64encode(data).decode(),
    }


def test_a_binary_holding_ndjson_is_checked_as_the_resources_it_holds() -> None:
    resources = resources_of(binary(FILE))
    assert [r.resource.get("id") for r in resources] == ["a1", "b1", "a2", "n"]
    denial = screen(ctx_with(SameTenant("a")), binary(FILE))
    assert isinstance(denial, Denial) and denial.control == "C10"
    own = screen(ctx_with(SameTenant("a")), binary(ndjson(patient("a1", "a"))))
    assert isinstance(own, Screened)


def test_other_binaries_stand_for_themselves() -> None:
    picture = binary(b"\x89PNG", "image/png")
    (returned,) = resources_of(picture)
    assert returned.resource is picture
    unreadable = {**binary(b""), "data": "%%%"}
    assert isinstance(screen(ctx_with(SameTenant("a")), unreadable), Denial)


# -- a control in monitor mode: its response checks record, they never withhold ----------------


@pytest.mark.parametrize("mode", [Mode.ENFORCE, Mode.MONITOR])
def test_response_checks_follow_the_mode_of_their_control(mode: Mode) -> None:
    ctx = request("GET", "Patient/b1")  # a tenant-a token
    pipeline = Pipeline([TenantStage()], lambda _c: mode, "/fhir")
    assert asyncio.run(pipeline.run(ctx)) is None
    denial = screen(ctx, patient("b1", "b"))
    if mode is Mode.ENFORCE:
        assert isinstance(denial, Denial) and denial.control == "C10" and not ctx.monitor_checks
    else:
        assert isinstance(denial, Screened) and not ctx.resource_checks
        assert [(f.control, f.action) for f in ctx.findings] == [("C10", "monitor")]

"""Reading HAPI's refusals, counting what it holds, checking it answers, recording a seed."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from labcore.config import LabConfig
from labcore.errors import LabError
from seed.counts import SEEDED_TYPES, count_on_server
from seed.jobs import BundleJob
from seed.lab import (
    SEED_RECORD,
    SeedReport,
    check_hapi,
    read_seed_record,
    record_path,
    seeded_options,
    write_seed_record,
)
from seed.loader import LoadSummary
from seed.options import PopulationOptions
from seed.outcome import diagnostics, locate
from seed.population import Population

BASE = "http://hapi.test/fhir"


def oo(*issues: dict[str, object], status: int = 400) -> httpx.Response:
    return httpx.Response(status, json={"resourceType": "OperationOutcome", "issue": list(issues)})


def bundle() -> bytes:
    resources = [
        {"resourceType": "Patient", "id": "pat-a-000001"},
        {
            "resourceType": "Encounter",
            "id": "enc-a-000001-1",
            "subject": {"reference": "Patient/pat-a-000001"},
        },
        {
            "resourceType": "Observation",
            "id": "obs-a-000001-1",
            "subject": {"reference": "Patient/pat-a-000001"},
            "performer": [{"reference": "Practitioner/prac-a-009"}],
        },
    ]
    return BundleJob.of("1-patient-pat-a-000001", "x", resources, 1).body


# ---- outcome ------------------------------------------------------------------------------


def test_locate_by_entry_index() -> None:
    response = oo({"diagnostics": "bad value", "expression": ["Bundle.entry[1].resource.status"]})
    assert locate(response, bundle()) == "Encounter/enc-a-000001-1"


def test_locate_by_the_entry_named_in_diagnostics() -> None:
    response = oo({"diagnostics": "HAPI-0989: Can not update Observation/obs-a-000001-1 ..."})
    assert locate(response, bundle()) == "Observation/obs-a-000001-1"


def test_locate_by_the_missing_reference_and_its_path() -> None:
    text = (
        "HAPI-1094: Resource Practitioner/prac-a-009 not found, specified in path: "
        "Observation.performer"
    )
    assert locate(oo({"diagnostics": text}), bundle()) == "Observation/obs-a-000001-1"


def test_locate_gives_up_when_the_outcome_does_not_say() -> None:
    assert locate(oo({"diagnostics": "HAPI-0450: Failed to parse"}), bundle()) is None
    assert locate(httpx.Response(500, text="boom"), bundle()) is None
    out_of_range = oo({"diagnostics": "Bundle.entry[7] is invalid"})
    assert locate(out_of_range, bundle()) is None


def test_diagnostics_joins_issues_and_falls_back_to_the_body() -> None:
    two = oo({"diagnostics": "first"}, {"details": {"text": "second"}}, {"severity": "error"})
    assert diagnostics(two) == "first; second"
    assert diagnostics(httpx.Response(502, text="Bad\n\n  Gateway")) == "Bad Gateway"
    assert diagnostics(httpx.Response(503)) == "(empty 503 response)"
    long = diagnostics(httpx.Response(500, text="x" * 5000), limit=50)
    assert len(long) == 50 and long.endswith("…")


# ---- counts -------------------------------------------------------------------------------


def test_count_on_server_asks_each_type_bypassing_the_search_cache() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        rtype = request.url.path.rsplit("/", 1)[1]
        return httpx.Response(200, json={"resourceType": "Bundle", "total": len(rtype)})

    counts = count_on_server(BASE, "tenant-b", transport=httpx.MockTransport(handler))
    assert counts == {t: len(t) for t in SEEDED_TYPES}
    first = seen[0]
    assert first.url.params["_summary"] == "count"
    assert first.url.params["_tag"] == "https://fhirlab.dev/tenant|tenant-b"
    assert first.headers["Cache-Control"] == "no-cache"
    assert str(first.url).startswith(f"{BASE}/Organization?")


def test_count_on_server_without_tenant_counts_everything() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert "_tag" not in request.url.params
        return httpx.Response(200, json={"resourceType": "Bundle", "total": 3})

    cfg = LabConfig(url_overrides={"hapi": BASE})
    transport = httpx.MockTransport(handler)
    assert count_on_server(cfg, types=("Patient",), transport=transport) == {"Patient": 3}


def test_every_generated_type_is_counted(population: Population) -> None:
    assert set(population.summary().resources_by_type) == set(SEEDED_TYPES)


def test_count_on_server_errors_are_lab_errors() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(LabError, match="unreachable"):
        count_on_server(BASE, transport=httpx.MockTransport(refuse))
    broken = httpx.MockTransport(lambda _: httpx.Response(500, json={"oops": 1}))
    with pytest.raises(LabError, match="could not count Organization"):
        count_on_server(BASE, transport=broken)


# ---- preflight ----------------------------------------------------------------------------


def test_check_hapi_accepts_a_capability_statement() -> None:
    capability = {"resourceType": "CapabilityStatement", "fhirVersion": "4.0.1"}
    asked: list[httpx.Request] = []

    def hapi(request: httpx.Request) -> httpx.Response:
        asked.append(request)
        return httpx.Response(200, json=capability)

    assert check_hapi(BASE, httpx.MockTransport(hapi)) is None  # no LabError
    assert [(r.method, str(r.url)) for r in asked] == [("GET", f"{BASE}/metadata")]
    assert asked[0].headers["Accept"] == "application/fhir+json"


def test_check_hapi_unreachable_says_start_the_lab() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(LabError) as caught:
        check_hapi("http://127.0.0.1:8280/fhir", httpx.MockTransport(refuse))
    assert caught.value.message == (
        "HAPI FHIR at http://127.0.0.1:8280/fhir is unreachable (ConnectError)"
    )
    assert "fhirlab up" in caught.value.hint


def test_check_hapi_rejects_something_else_on_the_port() -> None:
    other = httpx.MockTransport(lambda _: httpx.Response(404, text="nginx"))
    with pytest.raises(LabError, match="did not answer /metadata"):
        check_hapi(BASE, other)


# ---- the lab's seed record ----------------------------------------------------------------


def test_seed_record_round_trip(tmp_path: Path) -> None:
    cfg = LabConfig(home=tmp_path / "lab")
    assert read_seed_record(cfg) is None and seeded_options(cfg) is None
    options = PopulationOptions(patients=3, seed=9)
    load = LoadSummary(BASE, 3, 100, 6, 1, 2.0, 4)
    path = write_seed_record(cfg, SeedReport(options, None, load, None, 2.5))
    assert path == record_path(cfg) == tmp_path / "lab" / SEED_RECORD
    record = read_seed_record(cfg)
    assert record is not None
    assert record["options"]["patients"] == 3 and record["load"]["resources"] == 100
    assert record["users"] is None and record["users_share"] is None
    assert seeded_options(cfg) == options
    assert not list(path.parent.glob(".*partial"))


def test_a_corrupt_seed_record_is_a_lab_error(tmp_path: Path) -> None:
    cfg = LabConfig(home=tmp_path)
    record_path(cfg).write_text("{not json")
    with pytest.raises(LabError, match="not valid JSON"):
        read_seed_record(cfg)

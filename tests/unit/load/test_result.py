"""load.json: the document's fields, the comparison with `off`, the end table."""

from __future__ import annotations

import json

import numpy as np
from rich.console import Console

from simulator.load.cost import Slice
from simulator.load.matrix import configuration
from simulator.load.result import LOAD_SCHEMA_VERSION, ConfigResult, LoadResult
from simulator.load.samples import TOKEN, Samples
from simulator.load.stats import allowed_added_p50, summarize
from simulator.load.table import load_table


def measured(read_ms: float, refused: bool) -> Samples:
    samples = Samples()
    samples.add(TOKEN, "demo", "ok", 300.0, 99.0)
    for i in range(10):
        samples.add("GET", "demo: read", "ok", read_ms, 100.0 + i * 0.1)
    outcome, ms = ("denied", 0.8) if refused else ("ok", 40.0)
    for i in range(10):
        samples.add("GET", "demo: other", outcome, ms, 100.05 + i * 0.1, "C08" if refused else None)
    return samples


def result() -> LoadResult:
    off = ConfigResult("off", configuration("off").controls, summarize(measured(2.0, False)))
    c08 = ConfigResult(
        "C08", configuration("C08").controls, summarize(measured(2.5, True)), 20, 1, {"volume": 1}
    )
    return LoadResult("2026-01-01T00:00:00Z", 5.0, 2, 2.0, 0, [{"name": "demo", "weight": 1}],
                      [off, c08])  # fmt: skip


def test_the_document_has_the_documented_fields() -> None:
    document = json.loads(json.dumps(result().to_dict()))
    assert document["schema_version"] == LOAD_SCHEMA_VERSION
    for key in ("started_at", "seconds", "users", "spawn_rate", "workers", "scenarios", "configs"):
        assert key in document
    config = document["configs"][1]
    for key in ("name", "controls", "requests", "failures", "denied", "rps", "p50_ms", "p95_ms",
                "p99_ms", "by_request", "audit_records", "alerts", "vs_off"):  # fmt: skip
        assert key in config
    assert config["controls"]["C08"] == "enforce" and config["controls"]["C05"] == "off"
    row = config["by_request"][0]
    assert set(row) >= {"name", "method", "requests", "failures", "denied", "rps", "p50_ms",
                        "p95_ms", "p99_ms"}  # fmt: skip


def test_the_comparison_with_off_separates_refused_work() -> None:
    off, c08 = result().to_dict()["configs"]
    assert off["vs_off"]["rps_ratio"] == 1.0 and off["vs_off"]["added_p50_ms"] == 0.0
    assert c08["denied"] == 10 and off["denied"] == 0
    assert c08["vs_off"]["added_p50_ms"] < 0  # refusals are cheap: the overall p50 drops
    assert c08["vs_off"]["allowed_names"] == 1  # only "demo: read" was served in both
    assert c08["vs_off"]["allowed_added_p50_ms"] == 0.5


def test_without_off_there_is_no_comparison() -> None:
    run = result()
    run.configs = run.configs[1:]
    assert run.to_dict()["configs"][0]["vs_off"] is None


def test_allowed_added_p50_takes_the_median_over_names() -> None:
    base, other = Samples(), Samples()
    for name, b, o in (("a", 1.0, 1.5), ("b", 2.0, 2.1), ("c", 3.0, 4.0), ("d", 1.0, 1.2)):
        base.add("GET", name, "ok", b, 1.0)
        other.add("GET", name, "ok", o, 1.0)
    names, added = allowed_added_p50(summarize(other).by_request, summarize(base).by_request)
    assert (names, added) == (4, 0.35)
    assert allowed_added_p50((), summarize(base).by_request) == (0, None)


def test_the_table_shows_each_configuration_against_off() -> None:
    console = Console(width=100, record=True)
    console.print(load_table(result()))
    text = console.export_text()
    assert "C08" in text and "off" in text and "×off" in text


def test_samples_keep_served_requests_by_kind_and_refusals_apart() -> None:
    samples = Samples()
    samples.add(TOKEN, "demo", "ok", 300.0, 99.0, kind="other")  # a login is no FHIR request
    samples.add("GET", "demo: read", "ok", 2.0, 100.0, kind="read")
    samples.add("GET", "demo: search", "ok", 8.0, 100.1, kind="search")
    samples.add("GET", "demo: search", "denied", 1.0, 100.2, "C08", kind="search")
    samples.add("GET", "demo: read", "failed", 50.0, 100.3, kind="read")
    assert samples.kinds == {"read": [2.0], "search": [8.0], "refused": [1.0]}
    again = Samples.from_dict(samples.to_dict())
    assert again.kinds == samples.kinds
    merged = Samples()
    merged.merge(samples)
    merged.merge(samples.drain())
    assert merged.kinds["read"] == [2.0, 2.0] and samples.kinds == {}


def _slices(seed: int, delay_ms: float = 0.0) -> tuple[Slice, ...]:
    rng = np.random.default_rng(seed)
    return tuple(
        Slice({"read": (rng.lognormal(np.log(2.0), 0.3, 200) + delay_ms).tolist()}, 5.0)
        for _ in range(4)
    )


def _config(name: str, seed: int, delay_ms: float = 0.0) -> ConfigResult:
    """A configuration whose reads take ~2 ms (+ `delay_ms`), in 4 rounds."""
    totals = summarize(measured(2.0, False))
    return ConfigResult(name, configuration(name).controls, totals, slices=_slices(seed, delay_ms))


def test_each_configuration_gets_its_cost_per_kind_read_against_the_noise_floor() -> None:
    run = result()
    run.configs = [_config("off", 1), _config("off-2", 2), _config("all", 3, delay_ms=2.0)]
    document = json.loads(json.dumps(run.to_dict()))
    floor = document["noise_floor"]["read"]
    assert floor["added_p50_ms"]["low"] <= 0 <= floor["added_p50_ms"]["high"]
    off, twin, everything = document["configs"]
    assert off["cost_vs_off"] == []
    assert twin["cost_vs_off"][0]["reading"].startswith("the run's noise floor: ±")
    read = everything["cost_vs_off"][0]
    assert read["kind"] == "read" and read["samples"] == 800
    assert 1.5 < read["added_p50_ms"]["estimate"] < 2.5
    assert read["reading"].startswith("+") and "95% interval" in read["reading"]
    assert document["cost_method"]["noise_floor"] == "off-2"


def test_with_direct_every_gateway_gets_its_whole_cost_against_hapi_itself() -> None:
    run = result()
    run.configs = [
        _config("off", 1, delay_ms=1.0),
        _config("off-2", 2, delay_ms=1.0),
        _config("all", 3, delay_ms=3.0),
        _config("direct", 4),
    ]
    document = json.loads(json.dumps(run.to_dict()))
    off, twin, everything, direct = document["configs"]
    assert direct["controls"] == {} and direct["cost_vs_off"] == []  # not a control
    assert direct["cost_vs_direct"] == []
    for gateway, added in ((off, 1.0), (twin, 1.0), (everything, 3.0)):
        (read,) = gateway["cost_vs_direct"]
        assert abs(read["added_p50_ms"]["estimate"] - added) < 0.5
        assert read["added_p50_ms"]["low"] > 0 and read["reading"].startswith("+")
    assert document["cost_method"]["direct"] == "direct"


def test_without_direct_no_configuration_is_compared_with_hapi_itself() -> None:
    run = result()
    assert all(c["cost_vs_direct"] == [] for c in run.to_dict()["configs"])


def test_with_the_requests_interleaved_no_throughput_ratio_is_reported() -> None:
    run = result()
    run.interleave = "requests"
    run.configs = [_config("off", 1), _config("off-2", 2), _config("all", 3)]
    document = run.to_dict()
    assert document["interleave"] == "requests"
    assert "drawing the requests within each cell" in document["cost_method"]["interval"]
    assert document["noise_floor"]["read"]["rps_ratio"] is None
    for each in document["configs"][1:]:
        (read,) = each["cost_vs_off"]
        assert read["rps_ratio"] is None and read["added_p50_ms"]["low"] is not None
    run.interleave = "slices"
    assert run.to_dict()["configs"][2]["cost_vs_off"][0]["rps_ratio"] is not None

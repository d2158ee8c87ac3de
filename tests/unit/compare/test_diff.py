"""What `fhirlab compare` calls a change and a regression, from two results documents."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from labcore.errors import LabError
from simulator.compare.diff import compare_documents
from simulator.compare.report import write_comparison
from simulator.compare.sides import ConfigSide, ResultsSide, resolve


def _run(
    scenario: str,
    verdicts: dict[str, str],
    patients: int = 1,
    resources: int = 3,
    exposure: float | None = 900.0,
    expect: dict[str, str] | None = None,
) -> dict[str, Any]:
    expect = expect or {}
    return {
        "scenario": scenario,
        "verdicts": verdicts,
        "expectations": [
            {"control": c, "expected": v, "actual": verdicts.get(c), "ok": verdicts.get(c) == v}
            for c, v in expect.items()
        ],
        "blast_radius": {"patients": patients, "patient_ids": [], "resources": resources},
        "exposure_window": {"seconds": exposure},
    }


def _doc(*runs: dict[str, Any], load: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"command": "run", "replay": {"runs": list(runs)}, "load": load}


def _load(estimate: float, half: float) -> dict[str, Any]:
    interval = {"estimate": estimate, "low": estimate - half, "high": estimate + half}
    return {
        "noise_floor": {"read": {"added_p50_ms": {"estimate": 0.0, "low": -0.3, "high": 0.3}}},
        "configs": [{"name": "all", "cost_vs_off": [{"kind": "read", "added_p50_ms": interval}]}],
    }


def test_identical_runs_show_no_change() -> None:
    doc = _doc(_run("s", {"C08": "held"}, expect={"C08": "held"}), load=_load(0.5, 0.2))
    result = compare_documents(doc, doc)
    assert not result.changed and not result.regressions
    assert [c.measurable for c in result.costs] == [False]


def test_a_control_that_stops_holding_is_a_regression_and_the_reverse_an_improvement() -> None:
    a = _doc(
        _run("browse", {"C08": "held"}, 1, expect={"C08": "held"}), _run("w", {"C05": "violated"})
    )
    b = _doc(
        _run("browse", {"C08": "violated"}, 10, expect={"C08": "held"}), _run("w", {"C05": "held"})
    )
    result = compare_documents(a, b)
    changes = {(v.scenario, v.control): v for v in result.verdicts}
    assert changes[("browse", "C08")].regression
    assert changes[("w", "C05")].improvement and not changes[("w", "C05")].regression
    assert result.regressions == [
        "browse: C08 held in A, violated in B",
        "browse: expectation C08 held met in A, failed in B",
        "browse: reached 10 patients in B, 1 in A",
    ]
    # the other way round: B is better, nothing regresses
    assert compare_documents(b, a).regressions == [
        "w: C05 held in A, violated in B",
    ]


def test_a_longer_or_unbounded_exposure_window_is_a_regression() -> None:
    a = _doc(_run("t", {}, exposure=900.0), _run("o", {}, exposure=900.0))
    b = _doc(_run("t", {}, exposure=28800.0), _run("o", {}, exposure=None))
    result = compare_documents(a, b)
    assert result.regressions == [
        "o: exposure window until revoked in B, 900 s in A",
        "t: exposure window 28800 s in B, 900 s in A",
    ]
    assert compare_documents(b, a).regressions == []
    assert compare_documents(b, a).changed
    # a second of the replay's own timing is not a change
    assert not compare_documents(
        _doc(_run("t", {}, exposure=11.2)), _doc(_run("t", {}, exposure=11.9))
    ).changed


def test_a_cost_changes_only_when_the_intervals_part() -> None:
    overlapping = compare_documents(_doc(load=_load(0.5, 0.3)), _doc(load=_load(0.9, 0.3)))
    assert [(c.delta_ms, c.measurable) for c in overlapping.costs] == [(0.4, False)]
    apart = compare_documents(_doc(load=_load(0.5, 0.2)), _doc(load=_load(2.5, 0.2)))
    assert [(c.delta_ms, c.measurable) for c in apart.costs] == [(2.0, True)]
    assert apart.changed and not apart.regressions  # cost is reported, never a regression
    assert apart.noise_floor["A"]["read"]["high"] == 0.3
    missing = compare_documents(_doc(load=_load(0.5, 0.2)), _doc())
    assert [(c.delta_ms, c.measurable) for c in missing.costs] == [(None, False)]


def test_scenarios_on_one_side_only_are_listed() -> None:
    result = compare_documents(
        _doc(_run("x", {}), _run("y", {})), _doc(_run("y", {}), _run("z", {}))
    )
    assert (result.only_a, result.only_b) == (["x"], ["z"])
    assert result.changed


def test_the_report_names_each_regression(tmp_path: Path) -> None:
    a = _doc(_run("browse", {"C08": "held"}, 1))
    b = _doc(_run("browse", {"C08": "violated"}, 10))
    write_comparison(compare_documents(a, b), tmp_path, {"A": {"what": "x"}, "B": {"what": "<y>"}})
    md = (tmp_path / "compare.md").read_text()
    assert "| browse | C08 | held | violated | regression |" in md
    assert "| browse | 1 | 10 | +9 |" in md
    html = (tmp_path / "compare.html").read_text()
    assert "&lt;y&gt;" in html and "<y>" not in html
    assert 'src="data:image/png;base64,' in html
    assert json.loads((tmp_path / "compare.json").read_text())["regressions"]


def test_sides_are_recognised_by_what_they_hold(tmp_path: Path) -> None:
    runs = tmp_path / "results"
    for stamp in ("20261201T000000Z", "20261202T000000Z"):
        (runs / stamp).mkdir(parents=True)
        (runs / stamp / "results.json").write_text(json.dumps(_doc(_run(stamp, {}))))
    newest = resolve("A", str(runs))
    assert isinstance(newest, ResultsSide) and newest.path.name == "20261202T000000Z"
    assert isinstance(resolve("A", str(runs / "20261201T000000Z" / "results.json")), ResultsSide)
    policy = tmp_path / "policy.yaml"
    policy.write_text("schema_version: 1\n")
    assert resolve("B", str(policy)) == ConfigSide("B", policy=policy)
    clients = tmp_path / "clients"
    clients.mkdir()
    (clients / "x.yaml").write_text("")
    assert resolve("B", str(clients)) == ConfigSide("B", clients=clients)


@pytest.mark.parametrize("make", ["missing", "empty-dir", "text-file", "not-results"])
def test_a_side_that_is_nothing_known_is_a_clear_error(tmp_path: Path, make: str) -> None:
    path = tmp_path / "thing"
    if make == "empty-dir":
        path.mkdir()
    elif make == "text-file":
        path = tmp_path / "notes.txt"
        path.write_text("x")
    elif make == "not-results":
        path.mkdir()
        (path / "results.json").write_text('{"hello": 1}')
    with pytest.raises(LabError) as caught:
        resolve("A", str(path))
    assert caught.value.message.startswith("A: ")


def test_a_fixed_client_reaching_its_own_patient_again_is_no_regression() -> None:
    """An 8-hour token refused by C02 reached nothing; the fixed 15-minute one is accepted and
    the app reads its own patient: verdict improved, reach restored, not leaked."""
    a = _doc(_run("long", {"C02": "violated"}, 0, 0, 0.0, expect={"C02": "violated"}))
    b = _doc(_run("long", {"C02": "held"}, 1, 12, 11.0, expect={"C02": "violated"}))
    result = compare_documents(a, b)
    assert result.changed and result.regressions == []
    (expectation,) = result.expectations
    assert expectation.a_ok and expectation.b_ok is False and not expectation.regression
    # the same growth with a verdict that got worse too is a regression
    worse = _doc(
        _run("long", {"C02": "held", "C08": "violated"}, 3, 20, 11.0, expect={"C02": "violated"})
    )
    a_with_c08 = _doc(_run("long", {"C02": "violated", "C08": "held"}, 0, 0, 0.0))
    assert (
        "long: reached 3 patients in B, 0 in A" in compare_documents(a_with_c08, worse).regressions
    )

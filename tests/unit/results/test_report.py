"""The results document and its reports, from replay runs built by hand (no server)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simulator.replay.summary import blast_radius, control_matrix
from simulator.results import ResultsDirectory
from simulator.results.report import render_reports
from tests.unit.results.builders import LOAD, document, interval, replays, scenario_run


def test_the_matrix_names_who_holds_and_who_breaks_each_control() -> None:
    on, _ = replays()
    rows = {row.control: row for row in control_matrix(on.runs)}
    assert rows["C08"].held_by == ("good",)
    assert rows["C08"].violated_by == ("bad",)
    assert rows["C08"].shown
    assert not rows["C05"].shown
    assert len(rows) == 12


def test_blast_radius_pairs_each_scenario_with_its_baseline() -> None:
    on, off = replays()
    rows = {row.scenario: row for row in blast_radius(on.runs, off.runs)}
    assert rows["bad"].on.patients == 1
    assert rows["bad"].off is not None and rows["bad"].off.patients == 3
    assert rows["bad"].prevented_patients == 2
    assert rows["bad"].on.refused == 1
    assert blast_radius(on.runs, None)[0].off is None


def test_the_document_is_versioned_json_with_a_summary() -> None:
    on, off = replays()
    doc = json.loads(json.dumps(document(on, off)))
    assert doc["schema_version"] == 1
    assert doc["summary"]["ok"] is True
    assert doc["summary"]["controls_shown"] == 1
    assert doc["blast_radius"][1]["controls_off"]["patients"] == 3
    assert doc["duration_s"] == 90.0


def test_a_missed_expectation_fails_the_summary() -> None:
    on, _ = replays()
    on.runs.append(scenario_run("wrong", {"C09": "held"}, [], ok=False))
    doc = document(on, None)
    assert doc["summary"]["ok"] is False
    assert doc["summary"]["expectations_failed"] == ["wrong: C09"]


@pytest.mark.parametrize("load", [None, LOAD])
def test_reports_render_with_charts(tmp_path: Path, load: dict | None) -> None:
    on, off = replays()
    charts = render_reports(document(on, off, load), tmp_path)
    md = (tmp_path / "report.md").read_text()
    html = (tmp_path / "report.html").read_text()
    assert "| C08 | search narrowed to the patient in context | good | bad |" in md
    assert "| bad | C08 | 1 | 3 | 1 | 1 | 1 |" in md
    assert "blast-radius.png" in charts and (tmp_path / "blast-radius.png").stat().st_size > 0
    assert "data:image/png;base64," in html
    if load:
        assert "| all | 450 | 90.0 | 0.90 | 9.000 | +0.900 | - |" in md
        assert "cost.png" in charts
        assert "**Latency mode**: every user paces itself at 5.0 requests/s" in md
        assert "<strong>Latency mode</strong>" in html
    else:
        assert "No load run" in md


def test_html_escapes_what_a_scenario_file_says(tmp_path: Path) -> None:
    on, _ = replays()
    on.runs[0].scenario = "<script>x</script>"
    render_reports(document(on, None), tmp_path)
    assert "<script>x</script>" not in (tmp_path / "report.html").read_text()


def test_results_directories_never_collide_and_copy_only_the_run_s_audit(tmp_path: Path) -> None:
    audit = tmp_path / "audit"
    audit.mkdir()
    (audit / "audit.jsonl").write_text("before\n")
    first = ResultsDirectory.new(tmp_path / "results", 1_800_000_000.0, audit)
    second = ResultsDirectory.new(tmp_path / "results", 1_800_000_000.0, audit)
    assert first.path != second.path
    with (audit / "audit.jsonl").open("a") as handle:
        handle.write("during\n")
    assert first.copy_audit() == {"audit": "audit/audit.jsonl"}
    assert (first.path / "audit" / "audit.jsonl").read_text() == "during\n"


def test_reports_show_each_cost_with_its_interval_and_the_noise_floor(tmp_path: Path) -> None:
    floor = {"added_p50_ms": interval(0.05, -0.3, 0.4), "added_p99_ms": interval(0, -1, 1),
             "rps_ratio": interval(1.0, 0.97, 1.03), "kind": "read", "samples": 900,
             "baseline_samples": 910}  # fmt: skip
    measured = {**floor, "added_p50_ms": interval(0.8, 0.5, 1.1),
                "reading": "+0.80 ms (95% interval +0.50 to +1.10)"}  # fmt: skip
    load = {
        **LOAD,
        "rounds": 4,
        "cost_method": {"baseline": "off", "noise_floor": "off-2", "interval": "95%, bootstrap"},
        "noise_floor": {"read": floor},
        "configs": [
            {**LOAD["configs"][0], "cost_vs_off": []},
            {**LOAD["configs"][1], "cost_vs_off": [measured]},
        ],
    }
    on, off = replays()
    charts = render_reports(document(on, off, load), tmp_path)
    md = (tmp_path / "report.md").read_text()
    html = (tmp_path / "report.html").read_text()
    assert "Latency mode" in md
    row = "| all | read | 900 | +0.80 [+0.50, +1.10] | +0.00 [-1.00, +1.00] | 1.00 [0.97, 1.03] |"
    assert row in md
    assert "(added median read ±0.40 ms)" in md and "±0.40 ms" in html
    assert "cost.png" in charts and (tmp_path / "cost.png").stat().st_size > 0
    assert "against HAPI FHIR itself" not in md  # no `direct` in this run


def test_reports_show_the_whole_gateway_against_direct_hapi(tmp_path: Path) -> None:
    whole = {"added_p50_ms": interval(1.2, 0.9, 1.5), "added_p99_ms": interval(2, 1, 3),
             "rps_ratio": interval(1.0, 0.98, 1.02), "kind": "search", "samples": 400,
             "baseline_samples": 410,
             "reading": "+1.20 ms (95% interval +0.90 to +1.50)"}  # fmt: skip
    load = {
        **LOAD,
        "cost_method": {"baseline": "off", "noise_floor": "off-2", "interval": "95%, bootstrap"},
        "noise_floor": {},
        "configs": [
            {**LOAD["configs"][0], "cost_vs_off": [], "cost_vs_direct": [whole]},
            {**LOAD["configs"][1], "cost_vs_off": [], "cost_vs_direct": []},
        ],
    }
    on, off = replays()
    render_reports(document(on, off, load), tmp_path)
    md = (tmp_path / "report.md").read_text()
    html = (tmp_path / "report.html").read_text()
    assert "### The whole gateway against HAPI FHIR itself" in md
    assert "| off | search | 400 | +1.20 [+0.90, +1.50] |" in md
    assert "against HAPI FHIR itself</h3>" in html and "+1.20 [+0.90, +1.50]" in html


def test_a_closed_loop_run_says_it_shows_throughput(tmp_path: Path) -> None:
    on, off = replays()
    render_reports(document(on, off, {**LOAD, "pace": 0.0}), tmp_path)
    md = (tmp_path / "report.md").read_text()
    assert "**Throughput mode**" in md and "Latency mode" not in md

"""The "where to enforce" section from replay runs and costs built by hand (no server)."""

from __future__ import annotations

from pathlib import Path

from simulator.results import build_document
from simulator.results.report import render_reports
from simulator.results.where import WHERE_SCENARIOS, received, where_to_enforce
from tests.unit.results.builders import PLACEMENTS, issuance_cost, placement_run

ISSUANCE = {"reading": "no cost measurable at this run's noise floor (±1.20 ms)"}
LOAD = {
    "configs": [
        {"name": "C05", "cost_vs_off": [{"kind": "read", "reading": "+0.30 ms (95% ...)"}]},
    ]
}


def test_each_control_shows_every_placement_it_was_replayed_in() -> None:
    rows = {r["control"]: r for r in where_to_enforce(PLACEMENTS, LOAD, ISSUANCE)}
    assert set(rows) == {"C01", "C05", "C11"}  # only controls with a replayed scenario
    c05 = rows["C05"]["placements"]
    assert list(c05) == ["gateway", "as", "both"]
    assert c05["gateway"]["caught"] and not c05["as"]["caught"]
    assert c05["as"]["verdict"] == "violated"
    assert c05["as"]["received"].startswith("scope patient/Appointment.rs")
    assert list(rows["C01"]["placements"]) == ["both"]
    assert rows["C01"]["placements"]["both"]["received"] == "no token: invalid_scope"


def test_the_costs_say_per_request_at_the_gateway_and_per_token_at_the_as() -> None:
    load = {"configs": [{"name": "C05", "cost_vs_off": [
        {"kind": "read", "reading": "no cost measurable at this run's noise floor (±0.3 ms)"},
        {"kind": "search", "reading": "+0.40 ms (95% interval +0.10 to +0.70)"},
        {"kind": "write", "reading": "no cost measurable at this run's noise floor (±1.0 ms)"},
    ]}]}  # fmt: skip
    rows = {r["control"]: r["cost"] for r in where_to_enforce(PLACEMENTS, load, ISSUANCE)}
    assert rows["C05"]["gateway"] == (
        "per request: search +0.40 ms (95% interval +0.10 to +0.70); "
        "no cost measurable on read, write"
    )
    assert rows["C05"]["as"] == f"per token issued: {ISSUANCE['reading']}; nothing per request"
    assert rows["C11"]["gateway"].startswith("nothing: down-scoping")
    (c05,) = where_to_enforce({"gateway": PLACEMENTS["gateway"]}, None, None)
    assert c05["cost"] == {
        "gateway": "not measured (no load run with this control)",
        "as": "not measured",
    }


def test_what_the_app_received_names_refresh_tokens_and_the_scope_probe() -> None:
    run = placement_run("overbroad-request", "held", 0)
    run["token"] = {"scope": "a b", "lifetime_s": 900, "refresh_token": True, "offline": True}
    run["scope_probe"] = {"outcome": "down-scoped"}
    text = received(run)
    assert text == "scope a b; 900 s; offline refresh token; over-broad request down-scoped"


def test_every_shared_control_and_c11_has_a_scenario() -> None:
    assert set(WHERE_SCENARIOS) == {"C01", "C02", "C03", "C04", "C05", "C11"}
    library = {p.stem for p in (Path(__file__).parents[3] / "scenarios").glob("*.yaml")}
    assert set(WHERE_SCENARIOS.values()) <= library


def test_the_issuance_cost_is_read_against_its_a_a_floor() -> None:
    assert issuance_cost(2.0)["reading"].startswith("+2.00 ms")
    assert issuance_cost(0.0)["reading"].startswith("no cost measurable")


def test_the_reports_show_the_section(tmp_path: Path) -> None:
    issuance = issuance_cost(2.0)
    where = {"issuance_cost": issuance, "rows": where_to_enforce(PLACEMENTS, LOAD, issuance)}
    document = build_document(
        command="lab",
        started=1_800_000_000.0,
        finished=1_800_000_090.0,
        lab={"gateway": "http://localhost:8080/fhir"},
        population=None,
        replay=None,
        where=where,
    )
    render_reports(document, tmp_path)
    md = (tmp_path / "report.md").read_text()
    html = (tmp_path / "report.html").read_text()
    assert "## Where to enforce (C01–C05, C11)" in md and "<h2>Where to enforce" in html
    assert "| C05 | wildcard-scheduler | gateway |" in md
    assert (
        "| as | scope patient/Appointment.rs; 300 s | 1 patient, 4 resources | **violated** |" in md
    )
    assert "`expires_in` 240 s against 300 s" in md
    assert "Added median per token +2.00" in md and "Added median per token +2.00" in html

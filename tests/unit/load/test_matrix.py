"""The controls matrix: names, modes, parsing of --matrix."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.controls import Mode
from gateway.policy import RUNTIME_CONTROLS
from labcore.errors import LabError
from simulator.load.matrix import (
    MATRIX_NAMES,
    configuration,
    full_matrix,
    parse_matrix,
    policy_configuration,
    with_controls_off,
)


def test_the_full_matrix_is_off_each_control_alone_then_all() -> None:
    names = [c.name for c in full_matrix()]
    assert names == ["off", "off-2", *RUNTIME_CONTROLS, "all"]
    assert parse_matrix(None) == full_matrix()
    assert parse_matrix("  ") == full_matrix()
    assert "off-2" not in [c.name for c in parse_matrix(None, noise_floor=False)]


def test_the_a_a_twin_of_off_runs_the_same_controls() -> None:
    assert configuration("off-2").modes == configuration("off").modes
    assert [c.name for c in parse_matrix("off,all")] == ["off", "off-2", "all"]
    assert [c.name for c in parse_matrix("off,all", noise_floor=False)] == ["off", "all"]
    assert [c.name for c in parse_matrix("off")] == ["off"]  # nothing to compare: no twin
    assert [c.name for c in parse_matrix("all,C05")] == ["C05", "all"]  # no off: no twin


def test_off_runs_no_control_and_all_runs_every_one() -> None:
    assert configuration("off").enforced == ()
    assert set(configuration("off").controls.values()) == {"off"}
    assert configuration("all").enforced == RUNTIME_CONTROLS


@pytest.mark.parametrize("control", RUNTIME_CONTROLS)
def test_a_control_alone_is_the_only_one_enforced(control: str) -> None:
    config = configuration(control)
    assert config.enforced == (control,)
    assert dict(config.modes)[control] is Mode.ENFORCE
    assert set(config.controls) == set(RUNTIME_CONTROLS)


def test_a_choice_keeps_the_matrix_order_and_counts_repeats_once() -> None:
    chosen = parse_matrix("c08, ALL,off,C05,C08", noise_floor=False)
    assert [c.name for c in chosen] == ["off", "C05", "C08", "all"]


@pytest.mark.parametrize("name", ["C07", "C11"])
def test_configuration_controls_are_refused_with_the_reason(name: str) -> None:
    with pytest.raises(LabError) as caught:
        parse_matrix(f"off,{name}", noise_floor=False)
    assert "configuration control" in caught.value.message
    assert "off, off-2, C01" in (caught.value.hint or "")


def test_unknown_names_are_listed_with_the_valid_ones() -> None:
    with pytest.raises(LabError) as caught:
        parse_matrix("off,fast,C99")
    assert "fast, C99" in caught.value.message
    assert all(name in (caught.value.hint or "") for name in MATRIX_NAMES)


def test_only_commas_is_an_error() -> None:
    with pytest.raises(LabError):
        parse_matrix(",,")


@given(st.lists(st.sampled_from(MATRIX_NAMES), min_size=1))
def test_any_choice_of_valid_names_parses_to_those_names(names: list[str]) -> None:
    chosen = [c.name for c in parse_matrix(",".join(names), noise_floor=False)]
    assert chosen == [n for n in MATRIX_NAMES if n in names]


@given(st.text(max_size=30))
def test_any_text_parses_or_fails_with_a_lab_error(text: str) -> None:
    try:
        chosen = parse_matrix(text)
    except LabError as exc:
        assert exc.hint and "off" in exc.hint
    else:
        assert chosen and all(c.name in MATRIX_NAMES for c in chosen)


def test_direct_is_hapi_itself_named_only_when_wanted() -> None:
    direct = configuration("direct")
    assert direct.direct and direct.modes == () and direct.controls == {}
    assert "direct" not in [c.name for c in full_matrix()]
    assert [c.name for c in parse_matrix("DIRECT,all,off")] == ["off", "off-2", "all", "direct"]
    assert not any(c.direct for c in parse_matrix("off,all"))


def test_enforcing_at_the_as_switches_the_shared_controls_off_everywhere() -> None:
    shared = ("C01", "C02", "C03", "C04", "C05")
    placed = with_controls_off(full_matrix(), shared)
    names = [c.name for c in placed]
    assert not set(shared) & set(names)  # alone, each would be `off` again
    assert "off" in names and "all" in names and "C08" in names
    every = next(c for c in placed if c.name == "all")
    assert all(every.controls[c] == "off" for c in shared)
    assert every.controls["C08"] == "enforce"


def test_a_policy_configuration_runs_the_file_as_it_is(tmp_path: Path) -> None:
    text = Path("gateway/policy.yaml").read_text().replace("C09: enforce", "C09: off")
    (tmp_path / "p.yaml").write_text(text)
    config = policy_configuration("B", tmp_path / "p.yaml")
    assert config.policy == str(tmp_path / "p.yaml")
    assert config.controls["C09"] == "off" and config.controls["C08"] == "enforce"
    assert set(config.controls) == set(RUNTIME_CONTROLS)

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.controls import Mode
from gateway.policy import RUNTIME_CONTROLS, load_policy
from labcore.errors import LabError
from simulator.stack.gateway_policy import parse_controls, write_policy


def test_parse_controls() -> None:
    assert parse_controls("C05=off, c08=MONITOR") == {"C05": Mode.OFF, "C08": Mode.MONITOR}
    assert parse_controls("all=off") == {c: Mode.OFF for c in RUNTIME_CONTROLS}


@pytest.mark.parametrize(
    ("text", "fragment"),
    [("C05", "CONTROL=MODE"), ("C05=maybe", "enforce, monitor, off"), ("C07=off", "C07")],
)
def test_bad_controls_are_clear(text: str, fragment: str) -> None:
    with pytest.raises(LabError) as caught:
        parse_controls(text)
    assert fragment in str(caught.value)


def test_write_policy_round_trips(tmp_path: Path) -> None:
    path = write_policy(tmp_path, {"C08": Mode.MONITOR})
    policy = load_policy(path)
    assert policy.mode("C08") is Mode.MONITOR
    assert policy.mode("C05") is Mode.ENFORCE
    assert policy == load_policy().with_modes({"C08": Mode.MONITOR})


def test_an_unquoted_off_is_the_off_mode(tmp_path: Path) -> None:
    """YAML reads `C09: off` as false; in a mode field it means off, and `on` stays an error."""
    text = Path("gateway/policy.yaml").read_text()
    (tmp_path / "off.yaml").write_text(text.replace("C09: enforce", "C09: off"))
    assert load_policy(tmp_path / "off.yaml").mode("C09") is Mode.OFF
    (tmp_path / "on.yaml").write_text(text.replace("C09: enforce", "C09: on"))
    with pytest.raises(LabError, match=r"controls\.C09"):
        load_policy(tmp_path / "on.yaml")

"""`fhirlab compare` on the real stack: the lab's policy against the same policy with C08 off,
replayed in one run, shows the C08 scenarios flip and their blast radius grow; the two results
directories it wrote compare the same way without replaying; `--fail-on regression` gates."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from labcore.config import LabConfig
from tests.integration.conftest import lab_env

EXIT_REGRESSION = 3
C08_SCENARIOS = ("cross-patient-browser", "scheduling-assistant")


def fhirlab_compare(lab: LabConfig, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "simulator", "compare", *args],
        env=lab_env(lab), capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip


def test_c08_off_against_the_lab_policy(seeded: LabConfig, tmp_path: Path) -> None:
    policy = seeded.repo / "gateway" / "policy.yaml"
    c08_off = tmp_path / "c08-off.yaml"
    c08_off.write_text(policy.read_text().replace("C08: enforce", "C08: off"))
    chosen = [arg for name in C08_SCENARIOS for arg in ("--scenario", name)]
    done = fhirlab_compare(
        seeded, str(policy), str(c08_off), *chosen,
        "--results", str(tmp_path / "out"), "--fail-on", "regression",
    )  # fmt: skip
    assert done.returncode == EXIT_REGRESSION, done.stdout[-3000:] + done.stderr[-3000:]
    (folder,) = (tmp_path / "out" / "compare").iterdir()
    report = json.loads((folder / "compare.json").read_text())
    flipped = {(v["scenario"], v["control"], v["a"], v["b"]) for v in report["verdicts"]}
    assert flipped == {(name, "C08", "held", "violated") for name in C08_SCENARIOS}
    reach = {r["scenario"]: r for r in report["reach"]}
    assert reach["cross-patient-browser"]["patients_delta"] > 0
    assert all(reach[name]["patients_b"] >= reach[name]["patients_a"] for name in C08_SCENARIOS)
    assert (
        "| cross-patient-browser | C08 | held | violated | regression |"
        in (folder / "compare.md").read_text()
    )
    assert (folder / "compare.html").stat().st_size > 0
    # each side's own results directory, compared again: the same verdicts, nothing replayed
    again = fhirlab_compare(
        seeded, str(folder / "A"), str(folder / "B"), "--results", str(tmp_path / "again")
    )
    assert again.returncode == 0, again.stderr[-2000:]  # reported, not gated
    (second,) = (tmp_path / "again" / "compare").iterdir()
    assert json.loads((second / "compare.json").read_text())["verdicts"] == report["verdicts"]
    assert not (second / "A").exists()
    same = fhirlab_compare(
        seeded, str(folder / "A"), str(folder / "A"), "--fail-on", "regression",
        "--results", str(tmp_path / "same"),
    )  # fmt: skip
    assert same.returncode == 0, same.stderr[-2000:]
    assert "no difference between A and B" in same.stdout


def test_a_side_that_is_not_a_configuration_is_refused_before_anything_runs(
    seeded: LabConfig, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("schema_version: 1\ncontrols: {C08: sometimes}\n")
    done = fhirlab_compare(
        seeded, str(seeded.repo / "gateway" / "policy.yaml"), str(broken),
        "--results", str(tmp_path / "out"),
    )  # fmt: skip
    assert done.returncode == 1
    assert "controls.C08" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()


def test_two_policies_costs_measured_in_one_run(seeded: LabConfig, tmp_path: Path) -> None:
    """With --load-seconds, B's cost over A per request kind, with its interval and reading
    against the same run's A/A noise floor; the run's load.json beside the report."""
    policy = seeded.repo / "gateway" / "policy.yaml"
    c09_off = tmp_path / "c09-off.yaml"
    c09_off.write_text(policy.read_text().replace("C09: enforce", "C09: off"))
    done = fhirlab_compare(
        seeded, str(policy), str(c09_off), "--scenario", "scheduling-assistant",
        "--load-seconds", "3", "--results", str(tmp_path / "out"),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (folder,) = (tmp_path / "out" / "compare").iterdir()
    measured = json.loads((folder / "compare.json").read_text())["measured"]
    kinds = {k["kind"]: k for k in measured["b_over_a"]}
    assert {"read", "search"} <= set(kinds)
    for k in kinds.values():
        interval = k["added_p50_ms"]
        assert interval["low"] <= interval["estimate"] <= interval["high"]
        assert k["reading"]
    assert "read" in measured["noise_floor"]
    load = json.loads((folder / measured["load"]).read_text())
    assert [c["name"] for c in load["configs"]] == ["off", "off-2", "A", "B"]
    assert "measured in one run" in (folder / "compare.md").read_text()
    bad = fhirlab_compare(seeded, str(policy), str(folder / "A"), "--load-seconds", "3")
    assert bad.returncode == 1 and "two policies" in bad.stderr

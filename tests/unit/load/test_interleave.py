"""How a round's configurations share it: in turn (slices), or at once with the requests
interleaved; the Locust process runs the slices of one group together."""

from __future__ import annotations

from pathlib import Path

import pytest

from labcore.errors import LabError
from simulator.load.matrix import parse_matrix
from simulator.load.rounds import REQUESTS, SLICES
from simulator.load.runner import LoadOptions, plan_slices
from simulator.load.spec import LoadSpec, Population, Slice

HOSTS = {"off": "http://g1/fhir", "off-2": "http://g2/fhir", "all": "http://g3/fhir",
         "warmup": "http://g0/fhir"}  # fmt: skip


def options(**kw: object) -> LoadOptions:
    return LoadOptions(seconds=8, matrix=tuple(parse_matrix("off,all")), **kw)  # type: ignore[arg-type]


def spec(slices: list[Slice]) -> LoadSpec:
    return LoadSpec(
        slices=tuple(slices), scenarios=("s",), library=None, read_only=False, users=1,
        spawn_rate=1.0, workers=0, population=Population(10, 1, 0, None, "X"),
        login_samples_path="logins.json",
    )  # fmt: skip


def test_paced_runs_interleave_requests_and_closed_loops_slices() -> None:
    assert options(pace=5.0).resolved_interleave == REQUESTS
    assert options().resolved_interleave == SLICES
    assert options(pace=5.0, interleave=SLICES).resolved_interleave == SLICES


def test_an_unknown_interleave_is_refused() -> None:
    with pytest.raises(LabError, match="--interleave sideways"):
        options(interleave="sideways").check()


def test_with_requests_interleaved_each_round_is_one_group(tmp_path: Path) -> None:
    chosen = options(pace=5.0, rounds=2)
    slices = plan_slices(chosen, 2, HOSTS, tmp_path, seed=3)
    warmup = slices[0]
    assert warmup.group == -1 and warmup.round == 0
    groups = spec(slices).groups()
    assert [len(g) for g in groups] == [1, 3, 3]  # the warm-up alone, then off, off-2, all
    for group in groups[1:]:
        pieces = [slices[i] for i in group]
        assert len({p.round for p in pieces}) == 1
        assert {p.config for p in pieces} == {"off", "off-2", "all"}
        (csv,) = {p.csv_prefix for p in pieces}  # one set of Locust CSVs per round
        assert csv == str(tmp_path / "load" / f"round-{pieces[0].round}" / "locust")
        # every configuration keeps its own raw samples
        assert len({p.samples_path for p in pieces}) == 3


def test_with_slices_every_slice_runs_alone(tmp_path: Path) -> None:
    slices = plan_slices(options(rounds=2), 2, HOSTS, tmp_path, seed=3)
    assert spec(slices).groups() == [[i] for i in range(len(slices))]
    assert all(s.csv_prefix == str(Path(s.directory) / "locust") for s in slices)


def test_a_spec_keeps_its_groups_through_json(tmp_path: Path) -> None:
    slices = plan_slices(options(pace=5.0, rounds=2), 2, HOSTS, tmp_path, seed=3)
    written = spec(slices).write(tmp_path / "spec.json")
    assert LoadSpec.read(written).groups() == spec(slices).groups()

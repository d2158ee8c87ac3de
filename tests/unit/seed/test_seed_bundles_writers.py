from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from seed import PopulationOptions, generate_population
from seed.bundles import iter_bundles, transaction_bundle
from seed.population import Population
from seed.writers import (
    MANIFEST,
    dumps,
    read_manifest,
    write_bundles,
    write_ndjson,
    write_population,
)


@pytest.fixture
def small() -> Population:
    return generate_population(PopulationOptions(patients=9, seed=11, tenants=2))


def test_transaction_bundle_puts_each_resource_at_its_id(small: Population) -> None:
    record = small.record(4)
    bundle = transaction_bundle(record.resources)
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "transaction"
    assert len(bundle["entry"]) == len(record.resources)
    for entry, resource in zip(bundle["entry"], record.resources, strict=True):
        assert entry["resource"] is resource
        assert entry["request"] == {
            "method": "PUT",
            "url": f"{resource['resourceType']}/{resource['id']}",
        }
    assert bundle["entry"][0]["request"]["url"] == "Patient/pat-a-000004"


def test_transaction_bundle_rejects_resources_without_id() -> None:
    with pytest.raises(ValueError, match="without resourceType and id: Patient/None"):
        transaction_bundle([{"resourceType": "Patient"}])


def test_bundles_come_in_load_order(small: Population) -> None:
    names = [name for name, _ in iter_bundles(small)]
    assert names[0] == "0-shared"
    assert names[1:10] == [f"1-patient-pat-{'ab'[k % 2]}-{k:06d}" for k in range(9)]
    assert names[10:] == ["2-group-grp-a", "2-group-grp-b"]
    assert [n[0] for n in names] == sorted(n[0] for n in names)  # the phase prefix sorts
    shared = dict(iter_bundles(small))["0-shared"]
    types = Counter(e["resource"]["resourceType"] for e in shared["entry"])
    assert types == {"Organization": 2, "Practitioner": 16, "PractitionerRole": 16}


def test_write_population_writes_ndjson_bundles_and_manifest(
    small: Population, tmp_path: Path
) -> None:
    result = write_population(small, tmp_path)
    summary = result.summary
    manifest = read_manifest(tmp_path)
    assert manifest is not None and manifest["summary"] == summary.to_dict()
    assert manifest["summary"]["seed"] == 11
    # NDJSON: one file per type, one valid resource per line, counts as in the summary.
    for rtype, rel in result.ndjson_files.items():
        lines = (tmp_path / rel).read_text(encoding="utf-8").splitlines()
        assert len(lines) == summary.resources_by_type[rtype]
        assert all(json.loads(line)["resourceType"] == rtype for line in lines)
    assert set(result.ndjson_files) == set(summary.resources_by_type)
    # Bundles: shared + one per patient + one per group, in load order, as listed.
    assert len(result.bundle_files) == 1 + 9 + 2 == len(manifest["bundles"])
    on_disk = sorted(p.name for p in (tmp_path / "bundles").iterdir())
    assert on_disk == sorted(Path(f).name for f in result.bundle_files)
    total = sum(
        len(json.loads((tmp_path / f).read_text(encoding="utf-8"))["entry"])
        for f in result.bundle_files
    )
    assert total == summary.total_resources
    assert not list(tmp_path.rglob("*.partial"))


def test_output_is_byte_identical_across_runs(small: Population, tmp_path: Path) -> None:
    write_population(small, tmp_path / "one")
    again = generate_population(PopulationOptions(patients=9, seed=11, tenants=2))
    write_population(again, tmp_path / "two")
    files = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*.*"))
    assert len(files) == 1 + 13 + 12
    for rel in files:
        assert (tmp_path / "one" / rel).read_bytes() == (tmp_path / "two" / rel).read_bytes()


def test_rewrite_prunes_files_of_an_earlier_larger_run(tmp_path: Path) -> None:
    write_bundles(generate_population(PopulationOptions(patients=6, seed=1)), tmp_path)
    write_bundles(generate_population(PopulationOptions(patients=3, seed=1)), tmp_path)
    names = sorted(p.name for p in (tmp_path / "bundles").iterdir())
    assert names == [
        "0-shared.json",
        "1-patient-pat-a-000000.json",
        "1-patient-pat-a-000002.json",
        "1-patient-pat-b-000001.json",
        "2-group-grp-a.json",
        "2-group-grp-b.json",
    ]


def test_a_failed_run_is_never_reported_complete(
    small: Population, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_ndjson(small, tmp_path)
    assert (tmp_path / MANIFEST).exists()
    before = (tmp_path / "ndjson" / "Patient.ndjson").read_bytes()

    def exploding_records(start: int = 0, stop: int | None = None):  # type: ignore[no-untyped-def]
        yield small.record(0)
        raise RuntimeError("disk full")

    monkeypatch.setattr(small, "records", exploding_records)
    with pytest.raises(RuntimeError, match="disk full"):
        write_ndjson(small, tmp_path)
    assert read_manifest(tmp_path) is None  # the directory no longer claims to be complete
    assert not list(tmp_path.rglob("*.partial"))
    # The previous complete files were not overwritten with half a run.
    assert (tmp_path / "ndjson" / "Patient.ndjson").read_bytes() == before


def test_unknown_format_is_refused(small: Population, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="formats must be a non-empty subset"):
        write_population(small, tmp_path, ("csv",))


def test_summary_counts_per_type_and_tenant(small: Population) -> None:
    summary = small.summary()
    counted: Counter[str] = Counter()
    for rec in small.records():
        counted.update(r["resourceType"] for r in rec.resources)
    for r in small.shared_resources() + small.groups():
        counted[r["resourceType"]] += 1
    assert summary.resources_by_type == dict(counted)
    assert summary.total_resources == sum(counted.values())
    assert summary.patients == 9
    assert {t: v["patients"] for t, v in summary.tenants.items()} == {
        "tenant-a": 5,
        "tenant-b": 4,
    }
    assert sum(v["resources"] for v in summary.tenants.values()) == summary.total_resources
    assert summary.resources_per_patient == pytest.approx(
        (summary.total_resources - 2 - 16 - 16 - 2) / 9
    )


def test_bundle_files_equal_the_bundle_builder(small: Population, tmp_path: Path) -> None:
    """The writer builds bundle JSON from already-encoded resources; it must match exactly."""
    result = write_bundles(small, tmp_path)
    built = {f"bundles/{name}.json": dumps(bundle) + "\n" for name, bundle in iter_bundles(small)}
    assert list(built) == list(result.bundle_files)
    for rel, text in built.items():
        assert (tmp_path / rel).read_text(encoding="utf-8") == text

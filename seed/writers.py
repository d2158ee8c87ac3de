"""Write a population to a directory: NDJSON per resource type and/or transaction bundles.

Layout::

    <directory>/
      ndjson/Patient.ndjson, ndjson/Observation.ndjson, …   one resource per line
      bundles/0-shared.json, bundles/1-patient-pat-a-000000.json, …, bundles/2-group-grp-a.json
      manifest.json                                          written last

Nothing half-written is ever left under a final name: every file is written under a temporary
name (``.<name>.partial``) and renamed when complete, and ``manifest.json`` (the summary, the seed
and options, the files in load order) is removed when a run starts and written only when every
other file is in place. A directory with a ``manifest.json`` is complete.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from seed.fhir import Resource
from seed.population import Population, Summary, SummaryBuilder

MANIFEST = "manifest.json"
FORMATS = ("ndjson", "bundles")


@dataclass(frozen=True, slots=True)
class WriteResult:
    directory: Path
    summary: Summary
    ndjson_files: dict[str, str]  # resource type → path relative to ``directory``
    bundle_files: tuple[str, ...]  # relative paths in load order


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, check_circular=False)


def dumps(resource: Resource) -> str:
    """Compact, deterministic JSON (insertion order, no spaces, UTF-8 kept as is)."""
    return _ENCODER.encode(resource)


def bundle_json(resources: Sequence[Resource], encoded: Sequence[str]) -> str:
    """``dumps(transaction_bundle(resources))``, reusing each resource's JSON (``encoded``).

    Serialising is most of the writing cost; this way each resource is encoded once for both
    NDJSON and its bundle. Type and id need no escaping (FHIR ids are ``[A-Za-z0-9.-]``).
    """
    entries = ",".join(
        f'{{"resource":{text},"request":{{"method":"PUT","url":"{r["resourceType"]}/{r["id"]}"}}}}'
        for r, text in zip(resources, encoded, strict=True)
    )
    return f'{{"resourceType":"Bundle","type":"transaction","entry":[{entries}]}}'


def write_population(
    population: Population,
    directory: str | os.PathLike[str],
    formats: Sequence[str] = FORMATS,
    *,
    durable: bool = False,
) -> WriteResult:
    """Generate every record once and write it in each of ``formats``; returns the summary.

    ``durable=True`` fsyncs each file before renaming it (slower; for crash-safe long runs).
    """
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown or not formats:
        raise ValueError(f"formats must be a non-empty subset of {FORMATS}; got {list(formats)}")
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    (root / MANIFEST).unlink(missing_ok=True)  # from now on the directory is not complete
    builder = SummaryBuilder(population)
    ndjson = _NdjsonSink(root / "ndjson", durable) if "ndjson" in formats else None
    bundle_dir = root / "bundles"
    bundle_files: list[str] = []
    if "bundles" in formats:
        bundle_dir.mkdir(exist_ok=True)
        _remove_partials(bundle_dir)

    def emit(name: str, resources: Sequence[Resource]) -> None:
        encoded = [dumps(r) for r in resources]
        if ndjson:
            ndjson.add(resources, encoded)
        if "bundles" in formats:
            text = bundle_json(resources, encoded) + "\n"
            _write_atomic(bundle_dir / f"{name}.json", text, durable)
            bundle_files.append(f"bundles/{name}.json")

    try:
        emit("0-shared", population.shared_resources())
        for record in population.records():
            builder.add_record(record)
            emit(f"1-patient-{record.patient_id}", record.resources)
        for g in population.groups():
            emit(f"2-group-{g['id']}", [g])
        ndjson_files = ndjson.commit() if ndjson else {}
    except BaseException:
        if ndjson:
            ndjson.abort()
        raise

    # Files of an earlier, larger or different run must not linger next to this one.
    if ndjson:
        _prune(root / "ndjson", "*.ndjson", {Path(f).name for f in ndjson_files.values()})
    if "bundles" in formats:
        _prune(bundle_dir, "*.json", {Path(f).name for f in bundle_files})
    summary = builder.build()
    manifest: dict[str, Any] = {
        "summary": summary.to_dict(),
        "formats": list(formats),
        "ndjson": ndjson_files,
        "bundles": bundle_files,
    }
    _write_atomic(root / MANIFEST, json.dumps(manifest, indent=2) + "\n", durable)
    return WriteResult(root, summary, ndjson_files, tuple(bundle_files))


def write_ndjson(population: Population, directory: str | os.PathLike[str]) -> WriteResult:
    return write_population(population, directory, ("ndjson",))


def write_bundles(population: Population, directory: str | os.PathLike[str]) -> WriteResult:
    return write_population(population, directory, ("bundles",))


def read_manifest(directory: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The manifest of a complete output directory, or ``None`` if it is absent (incomplete)."""
    path = Path(directory) / MANIFEST
    if not path.exists():
        return None
    manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return manifest


class _NdjsonSink:
    """One ``.partial`` file per resource type, renamed into place by ``commit``."""

    def __init__(self, directory: Path, durable: bool) -> None:
        self.directory = directory
        self.durable = durable
        directory.mkdir(parents=True, exist_ok=True)
        _remove_partials(directory)
        self.files: dict[str, IO[str]] = {}

    def add(self, resources: Sequence[Resource], encoded: Sequence[str]) -> None:
        for resource, text in zip(resources, encoded, strict=True):
            rtype = resource["resourceType"]
            out = self.files.get(rtype)
            if out is None:
                out = (self.directory / f".{rtype}.ndjson.partial").open("w", encoding="utf-8")
                self.files[rtype] = out
            out.write(text)
            out.write("\n")

    def commit(self) -> dict[str, str]:
        names: dict[str, str] = {}
        for rtype in sorted(self.files):
            out = self.files[rtype]
            _close(out, self.durable)
            os.replace(out.name, self.directory / f"{rtype}.ndjson")
            names[rtype] = f"{self.directory.name}/{rtype}.ndjson"
        self.files = {}
        return names

    def abort(self) -> None:
        for out in self.files.values():
            out.close()
            Path(out.name).unlink(missing_ok=True)
        self.files = {}


def _write_atomic(path: Path, text: str, durable: bool) -> None:
    partial = path.with_name(f".{path.name}.partial")
    try:
        with partial.open("w", encoding="utf-8") as out:
            out.write(text)
            if durable:
                out.flush()
                os.fsync(out.fileno())
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def _close(out: IO[str], durable: bool) -> None:
    if durable:
        out.flush()
        os.fsync(out.fileno())
    out.close()


def _prune(directory: Path, pattern: str, keep: set[str]) -> None:
    for path in directory.glob(pattern):
        if path.name not in keep:
            path.unlink()


def _remove_partials(directory: Path) -> None:
    for leftover in directory.glob(".*.partial"):
        leftover.unlink()

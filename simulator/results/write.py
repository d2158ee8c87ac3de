"""Write a results directory: the audit slice, results.json, the charts and the reports."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gateway.audit.chain import verify_chain
from gateway.recorder import AUDIT_FILE
from labcore.config import LabConfig
from simulator.replay.library import LibraryReplay
from simulator.results.directory import ResultsDirectory
from simulator.results.document import build_document
from simulator.results.report import render_reports

RESULTS_FILE = "results.json"


def lab_facts(cfg: LabConfig) -> dict[str, Any]:
    return {
        "home": str(cfg.home),
        "external": cfg.external,
        "gateway": cfg.gateway_base_url,
        "keycloak": cfg.keycloak_url,
        "hapi": cfg.hapi_base_url,
    }


def audit_facts(folder: ResultsDirectory, copied: Mapping[str, str]) -> dict[str, Any] | None:
    """How many records and alerts the lab's gateway wrote during the run, and whether its whole
    hash chain verifies."""
    if folder.audit_dir is None:
        return None
    facts: dict[str, Any] = {"copied": dict(copied)}
    for name, relative in copied.items():
        with (folder.path / relative).open("rb") as handle:
            facts[f"{name}_records"] = sum(1 for _ in handle)
    report = verify_chain(folder.audit_dir / AUDIT_FILE)
    facts["chain"] = {"ok": report.ok, "records": report.records, "reason": report.reason}
    return facts


def write_results(
    folder: ResultsDirectory,
    cfg: LabConfig,
    started: float,
    *,
    command: str,
    replay: LibraryReplay | None,
    baseline: LibraryReplay | None = None,
    population: Mapping[str, Any] | None = None,
    load: Mapping[str, Any] | None = None,
    checks: list[dict[str, Any]] | None = None,
    stack: Mapping[str, Any] | None = None,
    where: Mapping[str, Any] | None = None,
) -> Path:
    copied = folder.copy_audit()
    document = build_document(
        command=command,
        started=started,
        finished=time.time(),
        lab=lab_facts(cfg),
        population=population,
        replay=replay,
        baseline=baseline,
        load=load,
        checks=checks,
        stack=stack,
        where=where,
        audit=audit_facts(folder, copied),
        files={"results": RESULTS_FILE, "report_md": "report.md", "report_html": "report.html"},
    )
    charts = render_reports(document, folder.path)
    document["files"]["charts"] = charts
    (folder.path / RESULTS_FILE).write_text(json.dumps(document, indent=2) + "\n", "utf-8")
    return folder.path

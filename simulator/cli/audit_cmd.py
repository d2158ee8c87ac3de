"""`fhirlab audit URL`: answer the checklist for any SMART on FHIR deployment, with evidence."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from labcore.errors import LabError
from simulator.audit.checklist import Status, parse_only
from simulator.audit.report import write
from simulator.audit.run import AuditOptions, audit
from simulator.cli.console import err, out

EXIT_ITEM_FAILED = 4
STYLE = {Status.PASS: "green", Status.FAIL: "red", Status.NOT_CHECKED: "dim"}


def audit_command(
    base: Annotated[str, typer.Argument(help="the FHIR base URL, e.g. http://localhost:8080/fhir")],
    token: Annotated[
        str | None,
        typer.Option(help="an access token to audit with (a patient-context one for C08)"),
    ] = None,
    only: Annotated[str | None, typer.Option(help="only these items, e.g. C02,C08")] = None,
    json_file: Annotated[
        Path | None, typer.Option("--json", help="write the answers as JSON")
    ] = None,
    markdown: Annotated[Path | None, typer.Option(help="write a Markdown report")] = None,
    html: Annotated[Path | None, typer.Option(help="write an HTML report")] = None,
    junit: Annotated[
        Path | None, typer.Option(help="write JUnit XML, a test case per item")
    ] = None,
) -> None:
    """Audit a SMART on FHIR deployment against the twelve-item checklist. Read-only: the SMART
    configuration, the CapabilityStatement, a search without a token, and with --token the
    token's claims and searches that name no patient. Exit 4 when an item fails."""
    if not base.startswith(("http://", "https://")):
        raise LabError(f"{base!r} is not an http(s) URL", "give the FHIR base URL")
    try:
        controls = parse_only(only)
    except ValueError as exc:
        raise LabError(str(exc)) from None
    report = audit(AuditOptions(base, controls, token))
    table = Table(title=f"audit of {report.target}", title_justify="left")
    for column in ("item", "status", "evidence"):
        table.add_column(column)
    for answer in report.answers:
        evidence = "\n".join(f"{e.probe}: {e.observed}" for e in answer.evidence) or answer.needs
        status = answer.status
        table.add_row(
            f"{answer.item.control} {answer.item.title}",
            f"[{STYLE[status]}]{status.value}[/]",
            evidence,
        )
    out.print(table)
    for path in write(report, json_file=json_file, markdown=markdown, html=html, junit=junit):
        err.print(f"written {path}")
    if report.failed:
        raise typer.Exit(EXIT_ITEM_FAILED)

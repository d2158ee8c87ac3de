"""`fhirlab audit URL`: answer the checklist for any SMART on FHIR deployment, with evidence."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from labcore.errors import LabError
from simulator.audit.access import DEFAULT_REDIRECT, DEFAULT_SCOPE, AdminAccess, ClientAccess
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
    client_id: Annotated[
        str | None, typer.Option(help="a client registration to obtain tokens with, as the app")
    ] = None,
    client_secret: Annotated[
        str | None,
        typer.Option(envvar="FHIRLAB_AUDIT_CLIENT_SECRET", help="its secret (client_secret_basic)"),
    ] = None,
    client_key: Annotated[
        Path | None, typer.Option(help="its private key for private_key_jwt (JWK JSON or PEM)")
    ] = None,
    user: Annotated[
        str | None, typer.Option(help="a test user to log in with (authorization code + PKCE)")
    ] = None,
    password: Annotated[
        str | None, typer.Option(envvar="FHIRLAB_AUDIT_PASSWORD", help="the test user's password")
    ] = None,
    scope: Annotated[str, typer.Option(help="the scopes the app asks for in use")] = DEFAULT_SCOPE,
    redirect_uri: Annotated[
        str, typer.Option(help="a redirect URI of the registration")
    ] = DEFAULT_REDIRECT,
    keycloak_admin: Annotated[
        str | None, typer.Option(help="Keycloak's base URL, to read the registration (admin API)")
    ] = None,
    admin_user: Annotated[str, typer.Option(envvar="FHIRLAB_AUDIT_ADMIN_USER")] = "admin",
    admin_password: Annotated[
        str | None, typer.Option(envvar="FHIRLAB_AUDIT_ADMIN_PASSWORD")
    ] = None,
    second_token: Annotated[
        str | None, typer.Option(help="a token of another tenant (C10)")
    ] = None,
    try_export: Annotated[
        bool,
        typer.Option(help="kick off a bulk $export with the app's token, then cancel it (C04)"),
    ] = False,
    revocation_wait: Annotated[
        float, typer.Option(min=1, help="seconds a revoked token may still be served (C09)")
    ] = 60.0,
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
    """Audit a SMART on FHIR deployment against the twelve-item checklist. Read-only toward the
    FHIR server: the SMART configuration, the CapabilityStatement, searches with and without a
    token, Patient/$everything. With --client-id it asks the authorization server for tokens as
    the app would (and over-broad ones), then revokes the one it used and times its refusal; a
    bulk $export only with --try-export. Exit 4 when an item fails."""
    if not base.startswith(("http://", "https://")):
        raise LabError(f"{base!r} is not an http(s) URL", "give the FHIR base URL")
    try:
        controls = parse_only(only)
    except ValueError as exc:
        raise LabError(str(exc)) from None
    if (user is None) != (password is None):
        raise LabError("--user and --password go together", "give both, or neither")
    if user is not None and client_id is None:
        raise LabError("--user needs --client-id", "the test user logs in to a client")
    if keycloak_admin is not None and admin_password is None:
        raise LabError(
            "--keycloak-admin needs --admin-password", "or set FHIRLAB_AUDIT_ADMIN_PASSWORD"
        )
    client = None
    if client_id is not None:
        client = ClientAccess(
            client_id, client_secret, client_key, user, password, scope, redirect_uri
        )
    admin = None
    if keycloak_admin is not None and admin_password is not None:
        admin = AdminAccess(keycloak_admin, admin_user, admin_password)
    options = AuditOptions(
        base, controls, token, client, admin, second_token, try_export, revocation_wait
    )
    report = audit(options)
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

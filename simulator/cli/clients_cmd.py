"""`fhirlab clients apply | show`: client profiles (keycloak/clients/*.yaml) in Keycloak."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from labcore.config import load_config
from simulator.authserver.apply import apply_profiles, show_profiles
from simulator.cli.console import err, out

app = typer.Typer(help="Client profiles in Keycloak: provision them, read them back.")

ClientIds = Annotated[list[str] | None, typer.Argument(help="client ids (default: every profile)")]


@app.command("apply")
def apply(client_ids: ClientIds = None) -> None:
    """Provision client profiles into their tenants' realms (idempotent)."""
    cfg = load_config()
    applied = apply_profiles(cfg, client_ids or ())
    for a in applied:
        extra = f" (new scopes: {', '.join(a.scopes_created)})" if a.scopes_created else ""
        if a.issuance:
            extra += f" (issuance policy {a.issuance})"
        err.print(f"{a.action:<8} {a.client_id} in {a.tenant}{extra}")


@app.command("show")
def show(
    client_ids: ClientIds = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Print each client's effective configuration, read back from Keycloak."""
    cfg = load_config()
    shown = show_profiles(cfg, client_ids or ())
    if as_json:
        out.print_json(json.dumps(shown))
        return
    table = Table(title="clients as Keycloak holds them", title_justify="left", show_lines=True)
    for column in ("tenant", "client", "class", "type", "grants", "token s", "scopes", "issuance"):
        table.add_column(column)
    for c in shown:
        if "public" not in c:
            missing = "[red]not provisioned[/]"
            table.add_row(c["tenant"], c["client_id"], missing, *[""] * 5)
            continue
        kind = "public" if c["public"] else f"confidential ({c['authenticator']})"
        scopes = (
            " ".join(c["default_scopes"]) + "\n[dim]optional:[/] " + " ".join(c["optional_scopes"])
        )
        table.add_row(
            c["tenant"],
            c["client_id"],
            c["class"],
            kind,
            "\n".join(c["grant_types"]),
            str(c["access_token_lifetime_s"]),
            scopes,
            _issuance(c.get("issuance")),
        )
    out.print(table)


def _issuance(rules: dict[str, Any] | None) -> str:
    """The issuance policy Keycloak applies to the client, one line per rule that is not off."""
    if not rules:
        return "[dim]none[/]"
    modes: dict[str, str] = {}
    for fate in rules.get("scopes", {}).values():
        for decision in fate.get("decisions", []):
            modes.setdefault(decision["control"], decision["mode"])
    for control, key in (("C02", "lifetime"), ("C03", "offline"), ("C04", "service_account")):
        mode = rules[key]["mode"] if key == "lifetime" else rules.get(key, "off")
        if mode != "off":
            modes.setdefault(control, mode)
    if rules.get("down_scope", "off") != "off":
        modes["C11"] = rules["down_scope"]
    return "\n".join(f"{c} {m}" for c, m in sorted(modes.items())) or "[dim]all off[/]"

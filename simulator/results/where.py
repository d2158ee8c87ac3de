"""The report's "where to enforce" section: for each control the authorization server can enforce
too, what the misconfigured AI app received and what it still reached with the check at the
gateway, at the authorization server (AS) or at both, and what each placement costs.

The replays come from `fhirlab lab` (the library's run is the gateway placement; the scenarios
below are replayed again with Keycloak's issuance policy on, `simulator/authserver/placement.py`).
The costs: at the gateway, the control's added latency per request from the load matrix (the
control alone against `off`); at the AS, the added time per token issued, from
`simulator/authserver/issuance_cost.py` (the mapper runs all its rules at once, so one figure
serves every control), and nothing per request.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

# the scenario that shows each control broken when nothing enforces it
WHERE_SCENARIOS: Final[dict[str, str]] = {
    "C01": "broad-clinical-assistant",
    "C02": "long-token-assistant",
    "C03": "offline-assistant",
    "C04": "export-by-ai",
    "C05": "wildcard-scheduler",
    # the AS grants its over-broad request as asked unless a policy narrows or refuses it
    "C11": "broad-clinical-assistant",
}
PLACEMENTS: Final = ("gateway", "as", "both")


def received(run: Mapping[str, Any]) -> str:
    """What the authorization server gave the app: its token, or its refusal."""
    if run.get("auth_error"):
        return f"no token: {run['auth_error']}"
    token = run["token"]
    parts = [f"scope {token.get('scope') or '-'}"]
    if token.get("lifetime_s"):
        parts.append(f"{token['lifetime_s']} s")
    if token.get("offline"):
        parts.append("offline refresh token")
    elif token.get("refresh_token"):
        parts.append("refresh token")
    probe = run.get("scope_probe")
    if probe:
        parts.append(f"over-broad request {probe['outcome']}")
    return "; ".join(parts)


def reached(run: Mapping[str, Any]) -> str:
    blast = run["blast_radius"]
    patients, resources = blast["patients"], blast["resources"]
    return f"{patients} patient{'' if patients == 1 else 's'}, {resources} resources"


def _gateway_cost(load: Mapping[str, Any] | None, control: str) -> str:
    """The control alone against `off`, per kind of request, as the load section reads it."""
    if control == "C11":
        return "nothing: down-scoping is the authorization server's alone"
    configs = {c["name"]: c for c in (load or {}).get("configs", [])}
    costs = configs.get(control, {}).get("cost_vs_off") or []
    if not costs:
        return "not measured (no load run with this control)"
    measured = [f"{k['kind']} {k['reading']}" for k in costs if not _unmeasurable(k)]
    unmeasurable = [k["kind"] for k in costs if _unmeasurable(k)]
    if unmeasurable:
        measured.append(f"no cost measurable on {', '.join(unmeasurable)}")
    return "per request: " + "; ".join(measured)


def _unmeasurable(cost: Mapping[str, Any]) -> bool:
    return str(cost["reading"]).startswith("no cost measurable")


def _as_cost(issuance: Mapping[str, Any] | None) -> str:
    if not issuance:
        return "not measured"
    return f"per token issued: {issuance['reading']}; nothing per request"


def where_to_enforce(
    runs: Mapping[str, list[Mapping[str, Any]]],
    load: Mapping[str, Any] | None,
    issuance: Mapping[str, Any] | None,
) -> list[dict[str, Any]]:
    """One row per control: the scenario; per placement what the app received, what it reached,
    the control's verdict and whether that placement's gateway caught it; and what enforcing it
    costs at the gateway and at the AS (both: the two together)."""
    by_scenario = {p: {r["scenario"]: r for r in runs.get(p, [])} for p in PLACEMENTS}
    rows = []
    for control, scenario in WHERE_SCENARIOS.items():
        placements = {}
        for placement in PLACEMENTS:
            run = by_scenario[placement].get(scenario)
            if run is None:
                continue
            placements[placement] = {
                "received": received(run),
                "reached": reached(run),
                "patients": run["blast_radius"]["patients"],
                "resources": run["blast_radius"]["resources"],
                "verdict": run["verdicts"].get(control, "n/a"),
                "caught": control in run["caught"],
            }
        if placements:
            cost = {"gateway": _gateway_cost(load, control), "as": _as_cost(issuance)}
            rows.append(
                {"control": control, "scenario": scenario, "placements": placements, "cost": cost}
            )
    return rows

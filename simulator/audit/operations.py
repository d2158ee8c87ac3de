"""Calls of the operations the checklist restricts, with the app's token.

`$everything` at the type level (C12) only reads, and asks for a few results. A bulk `$export`
kick-off (C04) starts a job on the target when it is open, so it runs only when the user opts in
(`--try-export`), and a job it started is cancelled at once (DELETE of its status URL).
"""

from __future__ import annotations

from typing import Final

import httpx

from simulator.audit.probes import FHIR_JSON, PROBE_COUNT, Answers, note, patients_in, put

KICK_OFFS: Final = ("Patient/$export", "$export")
REFUSED: Final = frozenset({400, 401, 403, 404, 405, 422, 501})  # refused or not offered


def everything(
    answers: Answers, http: httpx.Client, base: str, token: str, patient: str | None
) -> None:
    """C12: `Patient/$everything` for the whole population. Refused, or nothing of any other
    patient than the token's own, passes."""
    probe = f"GET Patient/$everything?_count={PROBE_COUNT} with the app's token"
    headers = {**FHIR_JSON, "Authorization": f"Bearer {token}"}
    try:
        resp = http.get(
            f"{base}/Patient/$everything", params={"_count": PROBE_COUNT}, headers=headers
        )
    except httpx.HTTPError as exc:
        note(answers, "C12", probe, f"no answer ({type(exc).__name__})")
        return
    if resp.status_code in REFUSED:
        put(answers, "C12", probe, f"refused: HTTP {resp.status_code}", True)
        return
    if resp.status_code != 200:
        note(answers, "C12", probe, f"HTTP {resp.status_code}")
        return
    others = sorted(p for p in patients_in(resp) if p != patient)
    if others:
        observed = f"HTTP 200 with the records of {', '.join(others)}: open to this client"
    else:
        observed = "HTTP 200 with nothing beyond the token's own patient"
    put(answers, "C12", probe, observed, not others)


def export_kick_off(answers: Answers, http: httpx.Client, base: str, token: str) -> None:
    """C04: a bulk `$export` kick-off with the app's token must be refused."""
    headers = {**FHIR_JSON, "Prefer": "respond-async", "Authorization": f"Bearer {token}"}
    for operation in KICK_OFFS:
        probe = f"GET {operation} (kick-off) with the app's token"
        try:
            resp = http.get(f"{base}/{operation}", headers=headers)
        except httpx.HTTPError as exc:
            note(answers, "C04", probe, f"no answer ({type(exc).__name__})")
            continue
        if resp.status_code == 202:
            cancelled = _cancel(http, resp.headers.get("content-location"), headers)
            put(answers, "C04", probe, f"HTTP 202: a bulk export started ({cancelled})", False)
        elif resp.status_code in REFUSED:
            put(answers, "C04", probe, f"refused: HTTP {resp.status_code}", True)
        else:
            note(answers, "C04", probe, f"HTTP {resp.status_code}")


def _cancel(http: httpx.Client, status_url: str | None, headers: dict[str, str]) -> str:
    if not status_url:
        return "no status URL to cancel it with"
    try:
        resp = http.delete(status_url, headers=headers)
    except httpx.HTTPError as exc:
        return f"cancelling it failed: {type(exc).__name__}"
    return (
        "cancelled" if resp.status_code in (200, 202, 204) else f"cancel: HTTP {resp.status_code}"
    )

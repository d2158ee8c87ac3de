"""C09 in effect: revoke the token the audit obtained, and time how long the target still serves
it. Offering a revocation endpoint is not yet revocation; a resource server that checks only a
token's signature serves a revoked token until it expires."""

from __future__ import annotations

import time
from typing import Final

import httpx

from simulator.audit.probes import FHIR_JSON, Answers, note, put
from simulator.smart.client import SmartClient
from simulator.smart.errors import SmartError

POLL_S: Final = 0.5


def revoke_and_time(
    answers: Answers, http: httpx.Client, base: str, client: SmartClient, token: str, wait_s: float
) -> None:
    probe = "revoke the audit's token (RFC 7009), then GET Patient?_count=1 until refused"
    if "C09" not in answers:
        return
    if _status(http, base, token) != 200:
        note(answers, "C09", probe, "the token reaches no search to time a refusal with")
        return
    try:
        client.revoke(token)
    except SmartError as exc:
        put(answers, "C09", probe, f"revocation refused: {exc}", False)
        return
    revoked = time.monotonic()
    while (elapsed := time.monotonic() - revoked) <= wait_s:
        status = _status(http, base, token)
        if status in (401, 403):
            observed = f"refused (HTTP {status}) {elapsed:.1f} s after revocation"
            put(answers, "C09", probe, observed, True)
            return
        time.sleep(POLL_S)
    put(answers, "C09", probe, f"still served {wait_s:.0f} s after revocation", False)


def _status(http: httpx.Client, base: str, token: str) -> int | None:
    headers = {**FHIR_JSON, "Authorization": f"Bearer {token}"}
    try:
        return http.get(f"{base}/Patient", params={"_count": 1}, headers=headers).status_code
    except httpx.HTTPError:
        return None

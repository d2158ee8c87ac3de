"""Read a FHIR server's refusal of a transaction: what it said, and which entry it was about.

HAPI answers a rejected transaction with one ``OperationOutcome`` for the whole bundle. Its
diagnostics name the failing entry in one of three ways, which ``locate`` tries in order:

- an entry index: ``Bundle.entry[3]`` (in ``diagnostics``, ``location`` or ``expression``);
- the entry itself: ``Observation/obs-a-000042-7`` (its ``request.url``);
- a missing reference and a path: ``Resource Patient/nope not found, specified in path:
  Observation.subject`` (the first entry of that type that points at ``Patient/nope``).
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx

_INDEX = re.compile(r"entry\[(\d+)\]")
_REFERENCE = re.compile(r"\b([A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64})\b")
_PATH = re.compile(r"\bpath:?\s+([A-Z][A-Za-z]+)\.")


def diagnostics(response: httpx.Response, limit: int = 600) -> str:
    """The server's own words: every issue's diagnostics (or details), else the body's start."""
    body = _json(response.content)
    if isinstance(body, dict) and body.get("resourceType") == "OperationOutcome":
        texts = [_issue_text(issue) for issue in body.get("issue", []) if isinstance(issue, dict)]
        text = "; ".join(t for t in texts if t)
        if text:
            return _clip(text, limit)
    text = " ".join(response.text.split())
    return _clip(text, limit) if text else f"(empty {response.status_code} response)"


def locate(response: httpx.Response, bundle: bytes) -> str | None:
    """``Type/id`` of the bundle entry the server's OperationOutcome blames, if it says."""
    outcome = _json(response.content)
    if not isinstance(outcome, dict) or outcome.get("resourceType") != "OperationOutcome":
        return None
    texts = []
    for issue in outcome.get("issue", []):
        if isinstance(issue, dict):
            texts.append(str(issue.get("diagnostics", "")))
            texts.extend(str(x) for x in issue.get("location", []) + issue.get("expression", []))
    text = " ".join(texts)
    parsed = _json(bundle)
    entries = parsed.get("entry", []) if isinstance(parsed, dict) else []
    urls = [str(e.get("request", {}).get("url", "")) for e in entries if isinstance(e, dict)]

    for match in _INDEX.finditer(text):
        index = int(match.group(1))
        if index < len(urls):
            return urls[index]
    mentioned = _REFERENCE.findall(text)
    for ref in mentioned:
        if ref in urls:
            return ref
    path = _PATH.search(text)
    wanted_type = path.group(1) if path else None
    for ref in mentioned:
        needle = json.dumps({"reference": ref}, separators=(",", ":"))[1:-1]
        for url, entry in zip(urls, entries, strict=True):
            if wanted_type and not url.startswith(f"{wanted_type}/"):
                continue
            if needle in json.dumps(entry.get("resource", {}), separators=(",", ":")):
                return url
    return None


def _issue_text(issue: dict[str, Any]) -> str:
    if issue.get("diagnostics"):
        return str(issue["diagnostics"])
    details = issue.get("details")
    if isinstance(details, dict):
        return str(details.get("text") or "")
    return ""


def _json(data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return None


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"

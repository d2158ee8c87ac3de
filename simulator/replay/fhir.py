"""Reading gateway responses: the refusing control, result counts, the patients reached."""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterable, Mapping
from typing import Any, Final

from labcore.patient_compartment import compartment_patient_ids

_CONTROL: Final = re.compile(r"^\s*\[(C\d{2})\]")


def refusing_control(body: Any) -> str | None:
    """`C08` from an OperationOutcome whose first diagnostics start with `[C08]`, else None."""
    if not isinstance(body, Mapping) or body.get("resourceType") != "OperationOutcome":
        return None
    for issue in body.get("issue") or ():
        if isinstance(issue, Mapping):
            match = _CONTROL.match(str(issue.get("diagnostics") or ""))
            if match:
                return match.group(1)
    return None


def resources_of(body: Any) -> list[Mapping[str, Any]]:
    """The resources a JSON response carries: a Bundle's entries, or the resource itself."""
    if not isinstance(body, Mapping) or "resourceType" not in body:
        return []
    if body.get("resourceType") == "OperationOutcome":
        return []
    if body.get("resourceType") == "Bundle":
        entries = body.get("entry") or ()
        return [
            e["resource"]
            for e in entries
            if isinstance(e, Mapping) and isinstance(e.get("resource"), Mapping)
        ]
    return [body]


def xml_body(content: bytes) -> Any:
    """A FHIR XML answer as its JSON form (what the rest of the replay reads), or None if it
    cannot be read: a scenario that asks for XML is judged on what it received like any other."""
    import xml.etree.ElementTree as ET

    from fhir.resources.R4B import get_fhir_model_class

    try:
        root = ET.fromstring(content)
        name = root.tag.rpartition("}")[2]
        model = get_fhir_model_class(name).model_validate_xml(content)
        return json.loads(model.model_dump_json())
    except Exception:  # whatever the XML or the models refuse: nothing readable was received
        return None


def ndjson_resources(text: str) -> list[Mapping[str, Any]]:
    """The resources of an NDJSON export file (blank or unparseable lines skipped)."""
    found: list[Mapping[str, Any]] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if isinstance(item, Mapping):
            found.append(item)
    return found


def resource_keys(resources: Iterable[Mapping[str, Any]]) -> list[str]:
    """`Type/id` of each resource that has both."""
    return [
        f"{r['resourceType']}/{r['id']}"
        for r in resources
        if isinstance(r.get("resourceType"), str) and isinstance(r.get("id"), str)
    ]


def patients_reached(
    resources: Iterable[Mapping[str, Any]], fhir_bases: Collection[str] | None = None
) -> set[str]:
    """Every patient whose compartment holds one of `resources`."""
    ids: set[str] = set()
    for resource in resources:
        ids |= compartment_patient_ids(resource, fhir_bases)
    return ids


def next_link(body: Any) -> str | None:
    """The `next` link of a Bundle, if any."""
    if not isinstance(body, Mapping):
        return None
    for link in body.get("link") or ():
        if isinstance(link, Mapping) and link.get("relation") == "next" and link.get("url"):
            return str(link["url"])
    return None

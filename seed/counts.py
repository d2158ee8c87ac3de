"""What a FHIR server holds of the lab's population: resources per type, optionally per tenant.

Compares with the generator's ``Summary.resources_by_type`` (or one tenant's
``Summary.tenants[t]["resources_by_type"]``). Counts use ``_summary=count`` with
``Cache-Control: no-cache``, because HAPI otherwise answers a repeated search from its search cache
(for a minute by default) and a count taken right after a load could be stale.
"""

from __future__ import annotations

import httpx

from labcore.config import LabConfig
from labcore.errors import LabError
from seed.codes import TENANT_TAG_SYSTEM

#: Every resource type the generator writes.
SEEDED_TYPES = (
    "Organization",
    "Practitioner",
    "PractitionerRole",
    "Patient",
    "Condition",
    "MedicationRequest",
    "AllergyIntolerance",
    "Immunization",
    "Appointment",
    "Encounter",
    "Observation",
    "DocumentReference",
    "Group",
)


def count_on_server(
    target: LabConfig | str,
    tenant: str | None = None,
    types: tuple[str, ...] = SEEDED_TYPES,
    *,
    transport: httpx.BaseTransport | None = None,
) -> dict[str, int]:
    """Resources per type on HAPI (``target``: the lab's config or a FHIR base URL).

    With ``tenant``, only resources tagged for it (``meta.tag`` ``https://fhirlab.dev/tenant``),
    which is how the generator marks every resource it writes; without, everything of each type,
    whoever wrote it.
    """
    base = target.hapi_base_url if isinstance(target, LabConfig) else target.rstrip("/")
    params = {"_summary": "count"}
    if tenant is not None:
        params["_tag"] = f"{TENANT_TAG_SYSTEM}|{tenant}"
    headers = {"Accept": "application/fhir+json", "Cache-Control": "no-cache"}
    counts: dict[str, int] = {}
    with httpx.Client(base_url=base, timeout=120, transport=transport) as http:
        for rtype in types:
            try:
                resp = http.get(f"/{rtype}", params=params, headers=headers)
            except httpx.TransportError as exc:
                raise LabError(
                    f"HAPI FHIR at {base} is unreachable ({exc.__class__.__name__})",
                    "start the lab with `fhirlab up` (or check `fhirlab status`)",
                ) from exc
            if resp.status_code != 200 or "total" not in (body := resp.json()):
                raise LabError(
                    f"HAPI FHIR at {base} could not count {rtype} ({resp.status_code}: "
                    f"{resp.text[:200]})",
                    "check `fhirlab logs hapi`",
                )
            counts[rtype] = int(body["total"])
    return counts

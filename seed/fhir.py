"""Small builders for FHIR JSON fragments, kept cheap: they run hundreds of times per patient.

Resources are plain ``dict``s (``Resource``). The top level of every resource, its ``meta`` and
its references are fresh objects, but constant terminology fragments (codings, concepts, the
tenant tag) are shared between resources: treat generated resources as read-only and
``copy.deepcopy`` one before mutating anything nested inside it.
"""

from __future__ import annotations

from datetime import date
from functools import cache
from typing import Any

from seed.codes import TENANT_TAG_SYSTEM, UCUM, Code, ObsDef

Resource = dict[str, Any]

#: Clinic-local offset used for every dateTime/instant (US Eastern standard time).
TZ = "-05:00"


def ref(resource_type: str, resource_id: str) -> dict[str, str]:
    return {"reference": f"{resource_type}/{resource_id}"}


@cache
def tenant_tag(tenant: str) -> dict[str, str]:
    return {"system": TENANT_TAG_SYSTEM, "code": tenant, "display": tenant}


def meta(tenant: str, security: tuple[Code, ...] = ()) -> dict[str, Any]:
    """``meta`` with the tenant tag, plus security labels for sensitive records."""
    if security:
        return {"tag": [tenant_tag(tenant)], "security": [c.coding for c in security]}
    return {"tag": [tenant_tag(tenant)]}


def concept(code: Code) -> dict[str, Any]:
    return code.concept


def concepts(*codes: Code, text: str) -> dict[str, Any]:
    """One CodeableConcept with several codings of the same meaning (e.g. SNOMED + ICD-10)."""
    return {"coding": [c.coding for c in codes], "text": text}


def quantity(defn: ObsDef, value: float) -> dict[str, Any]:
    return {"value": value, "unit": defn.unit, "system": UCUM, "code": defn.ucum}


@cache
def iso_date(ordinal: int) -> str:
    return date.fromordinal(ordinal).isoformat()


def iso_datetime(ordinal: int, minute_of_day: int) -> str:
    """``YYYY-MM-DDThh:mm:00-05:00`` for a day ordinal and a minute in that day."""
    hour, minute = divmod(minute_of_day, 60)
    return f"{iso_date(ordinal)}T{hour:02d}:{minute:02d}:00{TZ}"


def rounded(value: float, decimals: int) -> float | int:
    """Round for display; integers stay ``int`` so JSON shows ``72`` rather than ``72.0``."""
    if decimals == 0:
        return round(value)
    return round(value, decimals)

"""Checked FHIR JSON served as FHIR XML, through a real FHIR serializer (`fhir.resources`).

The gateway reads and checks every answer as JSON (`gateway/formats.py`); a client that asked
for XML gets the checked resources written as XML by `fhir.resources`' models (R4B, the closest
release it ships to HAPI's R4: the resources a FHIR server returns have the same elements in
both). What the models cannot represent is not written half: the client is told to ask for JSON
(406). The models load on the first XML answer, not at start.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

__all__ = ["NotServable", "to_xml"]


class NotServable(Exception):
    """A checked answer that the XML serializer cannot write."""


@lru_cache(maxsize=1)
def _model_class() -> Any:
    from fhir.resources.R4B import get_fhir_model_class

    return get_fhir_model_class


def to_xml(resource: dict[str, Any]) -> bytes:
    """`resource` (FHIR JSON, parsed) as FHIR XML, UTF-8."""
    rtype = resource.get("resourceType")
    if not isinstance(rtype, str):
        raise NotServable("the answer is not a FHIR resource")
    try:
        model = _model_class()(rtype)
    except ValueError as exc:
        raise NotServable(f"{rtype} has no XML form here") from exc
    try:
        written = model.model_validate(resource).model_dump_xml()
    except Exception as exc:  # the serializer's own validation errors, whatever their type
        raise NotServable(f"this {rtype} cannot be written as XML ({type(exc).__name__})") from exc
    return written.encode("utf-8") if isinstance(written, str) else bytes(written)

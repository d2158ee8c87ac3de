"""The answer formats the gateway serves, and the one it always asks HAPI for.

HAPI answers in whatever format a client asks (`_format`, `Accept`): JSON under three media
types, XML under three, RDF Turtle, HTML (`_summary=text`, a browser's `Accept`). A gateway that
reads only one of them checks only some answers. So the gateway asks HAPI for JSON, whatever the
client asked for, reads and checks that, and serves the client's format from the checked
resources: JSON as it is, XML through a FHIR serializer (`gateway/fhir_xml.py`). A format it
does not serve is refused up front with 406, before anything is asked of HAPI.

Bulk-export output is the one other kind of answer: a `Binary` read with an NDJSON `Accept`
(what a bulk-data client sends for an output file) is asked for as NDJSON and checked line by
line as it streams (`gateway/ndjson.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from functools import lru_cache
from typing import Any, Final

from gateway.classify import Params

__all__ = ["Answer", "Kind", "NotAcceptable", "negotiate"]

UPSTREAM_JSON: Final = b"application/fhir+json"
UPSTREAM_NDJSON: Final = b"application/fhir+ndjson"


class Kind(Enum):
    JSON = "json"
    XML = "xml"
    NDJSON = "ndjson"  # bulk-export output, streamed and checked line by line


@dataclass(frozen=True, slots=True)
class Answer:
    """What the client gets: the kind and the media type its answer is labelled with."""

    kind: Kind
    media_type: bytes

    @property
    def upstream_accept(self) -> bytes:
        return UPSTREAM_NDJSON if self.kind is Kind.NDJSON else UPSTREAM_JSON


class NotAcceptable(Exception):
    """The client asked only for formats the gateway does not serve (406)."""


_JSON = Answer(Kind.JSON, b"application/fhir+json;charset=utf-8")
_XML = Answer(Kind.XML, b"application/fhir+xml;charset=utf-8")
_NDJSON = Answer(Kind.NDJSON, b"application/fhir+ndjson")

# `_format` values and media types, as HAPI reads them, with the label of the answer.
_KNOWN: Final[dict[str, Answer]] = {
    "json": _JSON,
    "application/fhir+json": _JSON,
    "application/json": Answer(Kind.JSON, b"application/json;charset=utf-8"),
    "application/json+fhir": Answer(Kind.JSON, b"application/json+fhir;charset=utf-8"),
    "xml": _XML,
    "application/fhir+xml": _XML,
    "application/xml": Answer(Kind.XML, b"application/xml;charset=utf-8"),
    "application/xml+fhir": Answer(Kind.XML, b"application/xml+fhir;charset=utf-8"),
    "text/xml": Answer(Kind.XML, b"text/xml;charset=utf-8"),
}
_WILDCARDS: Final = frozenset({"*/*", "application/*"})
NDJSON_TYPES: Final = frozenset(
    {b"application/fhir+ndjson", b"application/ndjson", b"application/x-ndjson"}
)
# the same as `_format` values and `Accept` media types (str), `ndjson` as a `_format` too
_NDJSON_TYPES: Final = frozenset(t.decode() for t in NDJSON_TYPES) | {"ndjson"}
SERVED: Final = "JSON (application/fhir+json) or XML (application/fhir+xml)"


def negotiate(params: Params, accept: bytes | None, export_file: bool = False) -> Answer:
    """The answer's format: `_format` wins over `Accept` (FHIR R4 §3.1.0.1.9); neither gives
    JSON. `export_file`: the request reads a Binary, which may be bulk-export output."""
    for name, value in params:
        if name == "_format":
            return _format_param(value.strip().lower(), export_file)
    if not accept:
        return _JSON
    return _accept(accept.decode("latin-1"), export_file)


def _format_param(value: str, export_file: bool) -> Answer:
    media = value.split(";", 1)[0].strip()
    if media in _KNOWN:
        return _KNOWN[media]
    if export_file and media in _NDJSON_TYPES:
        return _NDJSON
    raise NotAcceptable(f"_format={value[:64]!r} is not served here; ask for {SERVED}")


@lru_cache(maxsize=256)
def _accept(accept: str, export_file: bool) -> Answer:
    """The client's most preferred media type the gateway serves (equal qualities: in the
    order given). Repeated `Accept` values are few; the choice is remembered."""
    best: tuple[float, int, Answer] | None = None
    for position, item in enumerate(accept.split(",")):
        media, _, rest = item.partition(";")
        media = media.strip().lower()
        quality = _quality(rest)
        if quality <= 0:
            continue
        answer: Answer | None
        if media in _KNOWN:
            answer = _KNOWN[media]
        elif media in _WILDCARDS:
            answer = _JSON
        elif export_file and media in _NDJSON_TYPES:
            answer = _NDJSON
        else:
            answer = None
        if answer is not None and (best is None or quality > best[0]):
            best = (quality, position, answer)
    if best is None:
        if not accept.strip():
            return _JSON
        shown = accept[:80]
        raise NotAcceptable(f"Accept: {shown!r} names no format served here; ask for {SERVED}")
    return best[2]


def _quality(parameters: str) -> float:
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "q":
            try:
                return max(0.0, min(1.0, float(value.strip())))
            except ValueError:
                return 0.0
    return 1.0


_SUBSETTED: Final = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "SUBSETTED",
}


def text_summary(resource: Any) -> Any:
    """A checked resource as `_summary=text` gives it: its id, meta and narrative, marked
    SUBSETTED (what HAPI answers, but as FHIR JSON or XML rather than HTML)."""
    if not isinstance(resource, dict):
        return resource
    meta = resource.get("meta") if isinstance(resource.get("meta"), dict) else {}
    tags = [t for t in meta.get("tag") or [] if isinstance(t, dict)]
    kept = {k: resource[k] for k in ("resourceType", "id", "text") if k in resource}
    return {**kept, "meta": {**meta, "tag": [*tags, _SUBSETTED]}}


JSON_TYPES: Final = frozenset(
    {b"application/fhir+json", b"application/json", b"application/json+fhir"}
)


def media_type(content_type: bytes | None) -> bytes:
    """A Content-Type's media type, lower-cased, without its parameters."""
    return content_type.split(b";", 1)[0].strip().lower() if content_type else b""


def is_ndjson(content_type: bytes | None) -> bool:
    return media_type(content_type) in NDJSON_TYPES


def is_json(content_type: bytes | None) -> bool:
    return media_type(content_type) in JSON_TYPES


def without_format(params: Params) -> Params:
    """The parameters HAPI gets: no `_format` (it is always asked for JSON)."""
    return tuple((name, value) for name, value in params if name != "_format")

"""Turn an HTTP request into the FHIR RESTful interaction it asks for (pure, no I/O).

`classify(method, path, query)` returns a frozen `FhirRequest`; anything that is not a FHIR
request the gateway understands raises `ClassifyError`, whose message is fit for the
diagnostics of a 400 (or 405) OperationOutcome.

Inputs are client-controlled. `path` and `query` are the *raw* request target parts
(percent-encoded ASCII, as in ASGI `raw_path` and `query_string`): each path segment is decoded
exactly once, after splitting, so `%2F` cannot create a segment and `%2e%2e` is caught as `..`.
Query strings are parsed like `application/x-www-form-urlencoded` (`&` separators, `+` is a
space), keeping repeated parameters in order; malformed escapes or invalid UTF-8 are refused
rather than guessed at, so the gateway never sees different parameters than the FHIR server.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Final, Literal, NamedTuple
from urllib.parse import unquote_to_bytes

__all__ = [
    "COMPARTMENT_TYPES",
    "ClassifyError",
    "FhirRequest",
    "IncludeValue",
    "Interaction",
    "ParamName",
    "classify",
    "parse_include_value",
    "parse_query",
    "parse_search_param_name",
]

Params = tuple[tuple[str, str], ...]
Level = Literal["system", "type", "instance"]

RESOURCE_TYPE: Final = re.compile(r"[A-Z][A-Za-z]+")
RESOURCE_ID: Final = re.compile(r"[A-Za-z0-9\-.]{1,64}")
OPERATION: Final = re.compile(r"\$[A-Za-z][A-Za-z0-9_\-]{0,63}")
COMPARTMENT_TYPES: Final[frozenset[str]] = frozenset(
    {"Patient", "Encounter", "RelatedPerson", "Practitioner", "Device"}
)
MAX_PARAMS: Final = 512
# parameters HAPI reads as numbers (it fails with a 500 on other values)
_COUNTS: Final = frozenset({"_count", "_getpagesoffset", "_offset"})
_MAX_SEGMENTS: Final = 5
# RFC 3986 request-target characters (printable ASCII, no space); anything else is refused.
_URL_CHARS: Final = re.compile(r"[\x21-\x7e]*")
_BAD_ESCAPE: Final = re.compile(r"%(?![0-9A-Fa-f]{2})")
_PARAM_BASE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")
_MODIFIER: Final = re.compile(r"[A-Za-z][A-Za-z0-9\-]*")
_CHAIN_LINK: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*(:[A-Z][A-Za-z]+)?")
_METHOD: Final = re.compile(r"[A-Z]{1,16}")


class Interaction(StrEnum):
    """FHIR RESTful interaction codes, plus the gateway's own kinds of request."""

    READ = "read"
    VREAD = "vread"
    UPDATE = "update"
    PATCH = "patch"
    DELETE = "delete"
    HISTORY_INSTANCE = "history-instance"
    HISTORY_TYPE = "history-type"
    HISTORY_SYSTEM = "history-system"
    CREATE = "create"
    SEARCH_TYPE = "search-type"
    SEARCH_SYSTEM = "search-system"
    SEARCH_COMPARTMENT = "search-compartment"
    CAPABILITIES = "capabilities"
    BATCH = "batch"  # batch or transaction: POST [base]; Bundle.type in the body decides
    OPERATION = "operation"
    SMART_CONFIGURATION = "smart-configuration"


_WRITES: Final = frozenset(
    {Interaction.CREATE, Interaction.UPDATE, Interaction.PATCH, Interaction.DELETE}
)
_SEARCHES: Final = frozenset(
    {Interaction.SEARCH_TYPE, Interaction.SEARCH_SYSTEM, Interaction.SEARCH_COMPARTMENT}
)


class ClassifyError(ValueError):
    """The request is not a FHIR request the gateway understands.

    `status` is the HTTP status to answer with (400, or 405 for a method the path does not
    take); `code` is the OperationOutcome issue code.
    """

    def __init__(self, message: str, status: int = 400, code: str = "invalid") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


_READS: Final = frozenset({Interaction.READ, Interaction.VREAD})
# What a paging link carries: the search id and offset, and the search's own page shape
# (`_elements` / `_summary`, already applied to the search it continues).
PAGING_PARAMS: Final = frozenset(
    {"_getpages", "_getpagesoffset", "_count", "_bundletype", "_format", "_pretty"}
    | {"_elements", "_summary"}
)


@dataclass(frozen=True, slots=True)
class FhirRequest:
    """One classified FHIR request.

    `resource_type` is the type acted on (for a compartment search `Patient/1/Observation` it is
    `Observation`, and `*` for `Patient/1/*`); `compartment` is `("Patient", "1")` there.
    `operation` is the name with its `$`. `params` are the query parameters (and, for
    `_search` POSTs, the form body's after them), decoded, in order, repeats kept.
    """

    interaction: Interaction
    method: str
    level: Level
    resource_type: str | None = None
    resource_id: str | None = None
    version_id: str | None = None
    operation: str | None = None
    compartment: tuple[str, str] | None = None
    params: Params = ()
    is_metadata: bool = False
    is_smart_config: bool = False

    @property
    def is_search(self) -> bool:
        return self.interaction in _SEARCHES

    @property
    def is_write(self) -> bool:
        return self.interaction in _WRITES

    @property
    def is_conditional(self) -> bool:
        """A conditional update, patch or delete (`PUT [type]?params`, ...): no id in the path."""
        return (
            self.interaction in (Interaction.UPDATE, Interaction.PATCH, Interaction.DELETE)
            and self.resource_id is None
        )

    @property
    def param_names(self) -> frozenset[str]:
        return frozenset(name for name, _ in self.params)

    @property
    def is_read_by_id(self) -> bool:
        """A read or vread of one resource (`Observation/x`, `Observation/x/_history/2`)."""
        return self.interaction in _READS and self.resource_id is not None

    @property
    def reads_binary(self) -> bool:
        """A read of a Binary: maybe bulk-export output, whose lines are what is checked."""
        return self.resource_type == "Binary" and self.interaction in _READS

    @property
    def is_page(self) -> bool:
        """One of HAPI's paging links, `[base]?_getpages=<search id>&_getpagesoffset=20&...`:
        the next page of a search already made (and checked), by an unguessable id."""
        if self.interaction is not Interaction.SEARCH_SYSTEM:
            return False
        names = self.param_names
        return "_getpages" in names and names <= PAGING_PARAMS

    def param_values(self, name: str) -> tuple[str, ...]:
        return tuple(value for key, value in self.params if key == name)


def _clip(text: str) -> str:
    return repr(text if len(text) <= 64 else text[:61] + "...")


def _decode(text: str, what: str) -> str:
    if "%" not in text:
        return text
    if _BAD_ESCAPE.search(text):
        raise ClassifyError(f"malformed percent-encoding in {what} {_clip(text)}")
    try:
        return unquote_to_bytes(text).decode("utf-8")
    except UnicodeDecodeError:
        raise ClassifyError(f"{what} {_clip(text)} is not valid UTF-8 once decoded") from None


def parse_query(query: str, *, what: str = "query") -> Params:
    """Parse a raw query string or form body into decoded `(name, value)` pairs, repeats kept.

    Empty pieces (`a=1&&b=2`) are skipped; a piece without `=` is a parameter with an empty
    value; an empty name, a malformed escape, invalid UTF-8 or more than `MAX_PARAMS` parameters
    raise `ClassifyError`.
    """
    if not query:
        return ()
    if not _URL_CHARS.fullmatch(query):
        raise ClassifyError(f"{what} must be percent-encoded printable ASCII")
    pieces = [piece for piece in query.split("&") if piece]
    if len(pieces) > MAX_PARAMS:
        raise ClassifyError(f"too many parameters in {what} (more than {MAX_PARAMS})")
    params: list[tuple[str, str]] = []
    for piece in pieces:
        raw_name, _, raw_value = (piece.replace("+", " ") if "+" in piece else piece).partition("=")
        name = _decode(raw_name, "parameter name")
        if not name:
            raise ClassifyError(f"parameter with an empty name in {what}")
        value = _decode(raw_value, "parameter value")
        if name in _COUNTS and not (value.isascii() and value.isdigit() and len(value) <= 9):
            raise ClassifyError(f"{name} must be a whole number, not {_clip(value)}")
        params.append((name, value))
    return tuple(params)


def _segments(path: str, base_path: str) -> list[str]:
    if not _URL_CHARS.fullmatch(path):
        raise ClassifyError("path must be percent-encoded printable ASCII")
    base = "/" + base_path.strip("/") if base_path.strip("/") else ""
    if base and path == base:
        rel = ""
    elif path.startswith(base + "/"):
        rel = path[len(base) + 1 :]
    else:
        raise ClassifyError(f"path {_clip(path)} is outside the FHIR base {base or '/'!r}")
    if rel.endswith("/"):
        rel = rel[:-1]  # one trailing slash is tolerated ("[base]/", "Patient/")
    if not rel:
        return []
    raw = rel.split("/")
    if len(raw) > _MAX_SEGMENTS:
        raise ClassifyError(f"path has too many segments ({len(raw)}): not a FHIR request")
    segments = []
    for piece in raw:
        if not piece:
            raise ClassifyError("empty path segment ('//')")
        segment = _decode(piece, "path segment")
        if segment in (".", ".."):
            raise ClassifyError("path traversal ('.' or '..' segment) is not allowed")
        if "/" in segment or "\\" in segment:
            raise ClassifyError("encoded '/' or '\\' in a path segment is not allowed")
        segments.append(segment)
    return segments


def _type(segment: str) -> str:
    if not RESOURCE_TYPE.fullmatch(segment):
        raise ClassifyError(f"{_clip(segment)} is not a FHIR resource type name")
    return segment


def _id(segment: str, what: str = "resource id") -> str:
    if not RESOURCE_ID.fullmatch(segment):
        raise ClassifyError(f"{_clip(segment)} is not a valid {what} ([A-Za-z0-9-.]{{1,64}})")
    return segment


def _operation(segment: str) -> str:
    """The operation's name in lower case: every check compares names without case (HAPI
    refuses `$Everything` today; a server that did not would otherwise meet a name no rule
    names). The request still goes upstream as the client spelled it."""
    if not OPERATION.fullmatch(segment):
        raise ClassifyError(f"{_clip(segment)} is not a valid operation name")
    return segment.lower()


def _method_error(method: str, what: str) -> ClassifyError:
    return ClassifyError(f"method {method} is not allowed on {what}", 405, "not-supported")


def classify(
    method: str,
    path: str,
    query: str,
    base_path: str = "/fhir",
    form_body: str | None = None,
) -> FhirRequest:
    """Classify one HTTP request; raises `ClassifyError` (only) for anything else.

    `form_body` is the `application/x-www-form-urlencoded` body, merged after the query for
    `POST .../_search`; it is ignored for other requests.
    """
    if not isinstance(method, str) or not isinstance(path, str) or not isinstance(query, str):
        raise ClassifyError("method, path and query must be strings")
    if form_body is None and len(path) + len(query) <= _MAX_REMEMBERED:
        return _classify_remembered(method, path, query, base_path)
    return _classify(method, path, query, base_path, form_body)


# Clients repeat the same requests (a FhirRequest is immutable, so equal requests can share
# one): the classification of a short request without a form body is remembered, bounded.
_MAX_REMEMBERED = 2048


@lru_cache(maxsize=1024)
def _classify_remembered(method: str, path: str, query: str, base_path: str) -> FhirRequest:
    return _classify(method, path, query, base_path, None)


def _classify(
    method: str, path: str, query: str, base_path: str, form_body: str | None
) -> FhirRequest:
    verb = method.upper()
    if not _METHOD.fullmatch(verb):
        raise ClassifyError(f"unsupported HTTP method {_clip(method)}", 405, "not-supported")
    segments = _segments(path, base_path)
    params = parse_query(query)
    return _dispatch(verb, "GET" if verb == "HEAD" else verb, segments, params, form_body)


def _search_params(params: Params, verb: str, form_body: str | None) -> Params:
    if verb == "POST" and form_body:
        return params + parse_query(form_body.strip(), what="form body")
    return params


def _dispatch(
    verb: str, method: str, seg: list[str], params: Params, form_body: str | None
) -> FhirRequest:
    n = len(seg)
    if n == 0:
        if method == "GET":
            return FhirRequest(Interaction.SEARCH_SYSTEM, verb, "system", params=params)
        if method == "POST":
            return FhirRequest(Interaction.BATCH, verb, "system", params=params)
        raise _method_error(verb, "the FHIR base")
    head = seg[0]
    if n == 1 and head == "metadata":
        if method != "GET":
            raise _method_error(verb, "metadata")
        return FhirRequest(
            Interaction.CAPABILITIES, verb, "system", params=params, is_metadata=True
        )
    if head == ".well-known":
        if n == 2 and seg[1] == "smart-configuration":
            if method != "GET":
                raise _method_error(verb, ".well-known/smart-configuration")
            return FhirRequest(
                Interaction.SMART_CONFIGURATION, verb, "system", params=params, is_smart_config=True
            )
        raise ClassifyError("unknown .well-known path", 404, "not-found")
    if head.startswith("$"):
        if n != 1:
            raise ClassifyError("nothing may follow a system-level operation name")
        return _op(verb, method, _operation(head), "system", None, None, None, params)
    if head.startswith("_"):
        if n == 1 and head == "_history":
            if method != "GET":
                raise _method_error(verb, "_history")
            return FhirRequest(Interaction.HISTORY_SYSTEM, verb, "system", params=params)
        if n == 1 and head == "_search":
            if method not in ("GET", "POST"):
                raise _method_error(verb, "_search")
            merged = _search_params(params, method, form_body)
            return FhirRequest(Interaction.SEARCH_SYSTEM, verb, "system", params=merged)
        raise ClassifyError(f"unknown system-level path {_clip(head)}")
    rtype = _type(head)
    if n == 1:
        return _type_level(verb, method, rtype, params)
    second = seg[1]
    if n == 2:
        if second == "_search":
            if method not in ("GET", "POST"):
                raise _method_error(verb, f"{rtype}/_search")
            merged = _search_params(params, method, form_body)
            return FhirRequest(Interaction.SEARCH_TYPE, verb, "type", rtype, params=merged)
        if second == "_history":
            if method != "GET":
                raise _method_error(verb, f"{rtype}/_history")
            return FhirRequest(Interaction.HISTORY_TYPE, verb, "type", rtype, params=params)
        if second.startswith("$"):
            return _op(verb, method, _operation(second), "type", rtype, None, None, params)
        return _instance(verb, method, rtype, _id(second), params)
    rid = _id(second)
    third = seg[2]
    if third == "_history":
        if n == 3:
            if method != "GET":
                raise _method_error(verb, "an instance's _history")
            return FhirRequest(
                Interaction.HISTORY_INSTANCE, verb, "instance", rtype, rid, params=params
            )
        vid = _id(seg[3], "version id")
        if n == 4:
            if method != "GET":
                raise _method_error(verb, "a resource version")
            return FhirRequest(Interaction.VREAD, verb, "instance", rtype, rid, vid, params=params)
        if n == 5 and seg[4].startswith("$"):
            return _op(verb, method, _operation(seg[4]), "instance", rtype, rid, vid, params)
        raise ClassifyError("unrecognised path after _history/[vid]")
    if third.startswith("$"):
        if n != 3:
            raise ClassifyError("nothing may follow an instance-level operation name")
        return _op(verb, method, _operation(third), "instance", rtype, rid, None, params)
    return _compartment_search(verb, method, seg, rtype, rid, params, form_body)


def _type_level(verb: str, method: str, rtype: str, params: Params) -> FhirRequest:
    if method == "GET":
        return FhirRequest(Interaction.SEARCH_TYPE, verb, "type", rtype, params=params)
    if method == "POST":
        return FhirRequest(Interaction.CREATE, verb, "type", rtype, params=params)
    conditional = {
        "PUT": Interaction.UPDATE,
        "PATCH": Interaction.PATCH,
        "DELETE": Interaction.DELETE,
    }.get(method)
    if conditional is None:
        raise _method_error(verb, rtype)
    if not params:
        raise ClassifyError(f"conditional {conditional} on {rtype} needs search parameters")
    return FhirRequest(conditional, verb, "type", rtype, params=params)


def _instance(verb: str, method: str, rtype: str, rid: str, params: Params) -> FhirRequest:
    interaction = {
        "GET": Interaction.READ,
        "PUT": Interaction.UPDATE,
        "PATCH": Interaction.PATCH,
        "DELETE": Interaction.DELETE,
    }.get(method)
    if interaction is None:
        raise _method_error(verb, f"{rtype}/[id]")
    return FhirRequest(interaction, verb, "instance", rtype, rid, params=params)


def _op(
    verb: str,
    method: str,
    name: str,
    level: Level,
    rtype: str | None,
    rid: str | None,
    vid: str | None,
    params: Params,
) -> FhirRequest:
    allowed = ("GET", "POST", "DELETE") if name == "$export-poll-status" else ("GET", "POST")
    if method not in allowed:
        raise _method_error(verb, f"operation {name}")
    return FhirRequest(
        Interaction.OPERATION, verb, level, rtype, rid, vid, operation=name, params=params
    )


def _compartment_search(
    verb: str,
    method: str,
    seg: list[str],
    compartment: str,
    cid: str,
    params: Params,
    form_body: str | None,
) -> FhirRequest:
    if compartment not in COMPARTMENT_TYPES:
        raise ClassifyError(f"{compartment} is not a compartment; unrecognised path")
    target = seg[2] if seg[2] == "*" else _type(seg[2])
    if len(seg) == 3:
        if method != "GET":
            raise _method_error(verb, "a compartment search")
    elif len(seg) == 4 and seg[3] == "_search":
        if method not in ("GET", "POST"):
            raise _method_error(verb, "a compartment _search")
        params = _search_params(params, method, form_body)
    else:
        raise ClassifyError("unrecognised path after a compartment search")
    return FhirRequest(
        Interaction.SEARCH_COMPARTMENT,
        verb,
        "type",
        target,
        compartment=(compartment, cid),
        params=params,
    )


class ParamName(NamedTuple):
    """A search parameter name split into parts.

    `subject:Patient.name` -> (`subject`, `Patient`, (`name`,)); `code:text` -> (`code`, `text`,
    ()); `_include:iterate` -> (`_include`, `iterate`, ()); `_has:Observation:patient:code` ->
    (`_has`, `Observation:patient`, (`code`,)): for `_has` the modifier is `Type:referenceParam`
    and the chain's single element is the inner parameter name (itself parseable, possibly
    another `_has:...`). Chain links keep their own type modifier: `organization:Organization`.
    """

    base: str
    modifier: str | None
    chain: tuple[str, ...]


@lru_cache(maxsize=2048)
def parse_search_param_name(name: str) -> ParamName:
    """Split a search parameter name; raises `ClassifyError` (only) if it is malformed."""
    if not isinstance(name, str) or not name:
        raise ClassifyError("empty search parameter name")
    if name == "_has" or name.startswith("_has:"):
        parts = name.split(":", 3)
        if len(parts) != 4 or not all(parts[1:]):
            raise ClassifyError(f"{_clip(name)}: _has needs _has:Type:reference:parameter")
        _, target, ref, inner = parts
        _type(target)
        if not _PARAM_BASE.fullmatch(ref):
            raise ClassifyError(f"{_clip(name)}: {_clip(ref)} is not a search parameter name")
        parse_search_param_name(inner)
        return ParamName("_has", f"{target}:{ref}", (inner,))
    head, dot, rest = name.partition(".")
    base, colon, modifier = head.partition(":")
    if not _PARAM_BASE.fullmatch(base):
        raise ClassifyError(f"{_clip(name)} is not a valid search parameter name")
    if colon and not _MODIFIER.fullmatch(modifier):
        raise ClassifyError(f"{_clip(name)} has an invalid modifier")
    chain = tuple(rest.split(".")) if dot else ()
    for link in chain:
        if not _CHAIN_LINK.fullmatch(link):
            raise ClassifyError(f"{_clip(name)} has an invalid chain element {_clip(link)}")
    return ParamName(base, modifier if colon else None, chain)


class IncludeValue(NamedTuple):
    """The value of `_include` / `_revinclude`: `Source:param[:Target]`, or `*`."""

    source_type: str
    search_param: str
    target_type: str | None


def parse_include_value(value: str) -> IncludeValue:
    """Parse `Observation:subject:Patient`; `*` gives (`*`, `*`, None). Raises `ClassifyError`."""
    if value == "*":
        return IncludeValue("*", "*", None)
    parts = value.split(":")
    if len(parts) not in (2, 3):
        raise ClassifyError(f"_include value {_clip(value)} is not Type:param[:Target]")
    source = _type(parts[0])
    param = parts[1]
    if param != "*" and not _PARAM_BASE.fullmatch(param):
        raise ClassifyError(f"_include value {_clip(value)} has an invalid parameter name")
    target = _type(parts[2]) if len(parts) == 3 else None
    return IncludeValue(source, param, target)

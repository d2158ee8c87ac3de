"""The bypass corpus: attack requests kept as data, expanded into cases and judged by bytes.

`corpus/bypass.yaml` holds a few dozen interaction templates (a request with placeholders such as
`{other}` or `{other:Observation}`, the class of attack, the expectation) and, per template, the
token kinds it is sent with and the set of answer variants (formats, `_summary`, client-sent
forwarding headers) it is sent in. `load_corpus` expands them into one `Case` per
template × token kind × variant; `test_bypass_corpus.py` fills the placeholders from the seeded
population, sends each case through an in-process gateway and asks `judge` about the answer.

The judgement reads no format: a case passes `no_foreign_data` when no identifier of another
patient's or tenant's resource (`ForeignIds`) occurs in the answer's bytes, whatever it is (JSON,
XML, Turtle, HTML, a raw Binary), nor in its headers, and `evil.example` (the host the corpus
forges in `X-Forwarded-Host` and `Forwarded`) occurs nowhere. An identifier the request itself
named may come back only as the subject of a refusal: anywhere in a 4xx OperationOutcome, in an
OperationOutcome inside a batch answer, or in a Bundle's `link` (the echo of the request's own
query). `refused` asks for that 4xx OperationOutcome (for HEAD, a 4xx without a body) on top.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus, urlencode

import yaml

CORPUS = Path(__file__).parent / "corpus" / "bypass.yaml"
FORGED_HOST = "evil.example"
TOKEN_KINDS = ("scheduler", "triage", "analytics", "tenant-b", "none")


class Expect(StrEnum):
    REFUSED = "refused"
    NO_FOREIGN_DATA = "no_foreign_data"


class CorpusError(ValueError):
    """The corpus file is malformed; the message names the template and the field."""


@dataclass(frozen=True, slots=True)
class Variant:
    """How an interaction is asked for: added query parameters and headers."""

    name: str
    params: tuple[tuple[str, str], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    unsupported: bool = False  # a format the gateway does not serve: 406 unless a control refused


@dataclass(frozen=True, slots=True)
class Template:
    id: str
    cls: str
    method: str
    url: str
    expect: Mapping[str, Expect]  # by token kind
    variants: Mapping[str, str]  # token kind -> name of a variant set
    headers: tuple[tuple[str, str], ...] = ()
    json_body: Any = None
    xml_body: str | None = None
    form: tuple[tuple[str, str], ...] | None = None
    follow_next: bool = False
    unsupported: bool = False  # the template itself asks for a format not served
    note: str = ""


@dataclass(frozen=True, slots=True)
class Case:
    template: Template
    token: str
    variant: Variant

    @property
    def id(self) -> str:
        return f"{self.template.cls}.{self.template.id}.{self.token}.{self.variant.name}"

    @property
    def expect(self) -> Expect:
        if self.unsupported:
            return Expect.REFUSED
        return self.template.expect[self.token]

    @property
    def unsupported(self) -> bool:
        return self.variant.unsupported or self.template.unsupported


# ---- loading --------------------------------------------------------------------------------
_TEMPLATE_KEYS = frozenset(
    {"id", "class", "get", "head", "post", "expect", "expect_for", "tokens", "headers", "json"}
    | {"xml", "form", "follow", "format", "note"}
)


def load_corpus(path: Path = CORPUS) -> list[Case]:
    """Every case of the corpus, in file order: template × token kind × variant."""
    data = yaml.safe_load(path.read_text())
    variants = {name: _variant(name, spec or {}) for name, spec in data["variants"].items()}
    sets: dict[str, list[Variant]] = {}
    for name, members in data["variant_sets"].items():
        unknown = [m for m in members if m not in variants]
        if unknown:
            raise CorpusError(f"{path.name}: variant set {name!r} names unknown variants {unknown}")
        sets[name] = [variants[m] for m in members]
    cases: list[Case] = []
    seen: set[str] = set()
    for raw in data["templates"]:
        template = _template(raw, sets, path.name)
        key = f"{template.cls}.{template.id}"
        if key in seen:
            raise CorpusError(f"{path.name}: template {key!r} is defined twice")
        seen.add(key)
        for token, set_name in template.variants.items():
            cases += [Case(template, token, v) for v in sets[set_name]]
    return cases


def _variant(name: str, spec: Mapping[str, Any]) -> Variant:
    params = spec.get("params") or {}
    pairs = params.items() if isinstance(params, Mapping) else params  # [[k, v], ...]: repeats
    return Variant(
        name,
        params=tuple((str(k), str(v)) for k, v in pairs),
        headers=tuple((str(k), str(v)) for k, v in (spec.get("headers") or {}).items()),
        unsupported=bool(spec.get("unsupported", False)),
    )


def _template(raw: Mapping[str, Any], sets: Mapping[str, list[Variant]], where: str) -> Template:
    tid = raw.get("id", "?")

    def fail(message: str) -> CorpusError:
        return CorpusError(f"{where}: template {tid!r}: {message}")

    unknown = set(raw) - _TEMPLATE_KEYS
    if unknown:
        raise fail(f"unknown fields {sorted(unknown)}")
    methods = [m for m in ("get", "head", "post") if m in raw]
    if len(methods) != 1:
        raise fail("give exactly one of get, head, post (the URL)")
    tokens = raw.get("tokens") or {}
    for token, set_name in tokens.items():
        if token not in TOKEN_KINDS:
            raise fail(f"unknown token kind {token!r} (one of {', '.join(TOKEN_KINDS)})")
        if set_name not in sets:
            raise fail(f"token {token!r}: unknown variant set {set_name!r}")
    if not tokens:
        raise fail("no token kinds")
    try:
        default = Expect(raw["expect"])
        overrides = {t: Expect(e) for t, e in (raw.get("expect_for") or {}).items()}
    except (KeyError, ValueError) as exc:
        raise fail(f"expect must be one of {[e.value for e in Expect]}: {exc}") from None
    if set(overrides) - set(tokens):
        raise fail(f"expect_for names token kinds it is not sent with: {sorted(overrides)}")
    if raw.get("follow") not in (None, "next"):
        raise fail("follow: only 'next' (follow the first answer's next link)")
    if raw.get("format") not in (None, "unsupported"):
        raise fail("format: only 'unsupported'")
    form = raw.get("form")
    return Template(
        id=str(tid),
        cls=str(raw.get("class") or fail("no class")),
        method=methods[0].upper(),
        url=str(raw[methods[0]]),
        expect={t: overrides.get(t, default) for t in tokens},
        variants=dict(tokens),
        headers=tuple((str(k), str(v)) for k, v in (raw.get("headers") or {}).items()),
        json_body=raw.get("json"),
        xml_body=raw.get("xml"),
        form=None if form is None else tuple((str(k), str(v)) for k, v in form.items()),
        follow_next=raw.get("follow") == "next",
        unsupported=raw.get("format") == "unsupported",
        note=str(raw.get("note", "")),
    )


# ---- rendering ------------------------------------------------------------------------------
PLACEHOLDER = re.compile(r"\{([a-z_]+)(?::([A-Za-z]+))?\}")
#: the placeholders a token kind's view fills (corpus/bypass.yaml's header says what each is)
PLACEHOLDERS = frozenset(
    {"me", "other", "xt", "other_pct", "other_family", "other_mrn", "my_group", "xt_group"}
    | {"my_org", "xt_org", "my_tenant_tag", "xt_tenant_tag", "my_prac", "common_code"}
    | {"other_binary", "xt_binary", "base", "hapi_obs_page", "hapi_patient_page"}
    | {"hapi_my_tenant_page", "hapi_xt_tenant_page"}
)
TYPED_PLACEHOLDERS = frozenset({"me", "other", "xt"})  # {other:Observation}: one of theirs


def placeholders(template: Template) -> set[tuple[str, str | None]]:
    """Every placeholder a template uses, as (name, resource type or None)."""
    texts = [template.url, *(v for _, v in template.headers), template.xml_body or ""]
    texts += [v for _, v in template.form or ()]
    texts.append(json.dumps(template.json_body))
    return {(m.group(1), m.group(2)) for t in texts for m in PLACEHOLDER.finditer(t)}


Lookup = Callable[[str, str | None], str]  # (name, resource type or None) -> value


def fill(text: str, lookup: Lookup) -> str:
    return PLACEHOLDER.sub(lambda m: lookup(m.group(1), m.group(2)), text)


def fill_any(value: Any, lookup: Lookup) -> Any:
    if isinstance(value, str):
        return fill(value, lookup)
    if isinstance(value, list):
        return [fill_any(v, lookup) for v in value]
    if isinstance(value, dict):
        return {k: fill_any(v, lookup) for k, v in value.items()}
    return value


@dataclass(frozen=True, slots=True)
class Rendered:
    method: str
    url: str  # path and query under the gateway's root, e.g. /fhir/Patient?_id=x
    headers: dict[str, str] = field(default_factory=dict)
    content: bytes | None = None

    def text(self) -> str:
        """Everything the client wrote, for finding the identifiers it named (also as the
        server reads it: percent-decoded, as in a query string or a form)."""
        written = f"{self.url}\n{self.head()}\n{(self.content or b'').decode('latin-1')}"
        return f"{written}\n{unquote_plus(written)}"

    def head(self) -> str:
        return "\n".join(f"{k}: {v}" for k, v in self.headers.items())


def fhir_url(relative: str) -> str:
    """`Patient/x` → `/fhir/Patient/x`; `?_getpages=…` → `/fhir?_getpages=…`; `` → `/fhir`."""
    if not relative or relative.startswith("?"):
        return f"/fhir{relative}"
    return f"/fhir/{relative}"


def add_params(url: str, params: Iterable[tuple[str, str]]) -> str:
    extra = urlencode(list(params), safe="/:*,")  # "+" must go as %2B
    if not extra:
        return url
    return f"{url}{'&' if '?' in url else '?'}{extra}"


def render(template: Template, variant: Variant | None, lookup: Lookup) -> Rendered:
    """The request a template stands for, in a variant (None: as written)."""
    url = fhir_url(fill(template.url, lookup))
    headers = {k: fill(v, lookup) for k, v in template.headers}
    content: bytes | None = None
    if template.json_body is not None:
        content = json.dumps(fill_any(template.json_body, lookup)).encode()
        headers.setdefault("Content-Type", "application/fhir+json")
    elif template.xml_body is not None:
        content = fill(template.xml_body, lookup).encode()
        headers.setdefault("Content-Type", "application/fhir+xml")
    elif template.form is not None:
        content = urlencode([(k, fill(v, lookup)) for k, v in template.form]).encode()
        headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
    if variant is not None:
        url, headers = apply_variant(url, headers, variant)
    return Rendered(template.method, url, headers, content)


def apply_variant(
    url: str, headers: Mapping[str, str], variant: Variant
) -> tuple[str, dict[str, str]]:
    return add_params(url, variant.params), {**headers, **dict(variant.headers)}


# ---- judging --------------------------------------------------------------------------------
_ID_CHAR = "A-Za-z0-9-"


class ForeignIds:
    """Identifiers of resources a token must never receive, found in any bytes by exact match.

    An identifier matches only as a whole token (no id character on either side), so
    `obs-a-000002-1` does not match inside `obs-a-000002-10` and a short id inside a longer
    word is no match. Only identifiers that cannot occur by accident should be given: the seeded
    ones (`pat-a-000002`, `obs-b-000003-7`, `org-b`), never HAPI's numeric ids.
    """

    def __init__(self, ids: Iterable[str]) -> None:
        self.ids = frozenset(ids)
        alternatives = "|".join(re.escape(i) for i in sorted(self.ids, key=len, reverse=True))
        self._pattern = re.compile(f"(?<![{_ID_CHAR}])(?:{alternatives or '(?!)'})(?![{_ID_CHAR}])")

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, rid: object) -> bool:
        return rid in self.ids

    def found(self, text: str) -> set[str]:
        return set(self._pattern.findall(text))


_XML_OUTCOME = re.compile(r"<OperationOutcome\b.*?</OperationOutcome>", re.DOTALL)
_XML_LINK = re.compile(r"<link>.*?</link>", re.DOTALL)
_XML_ROOT = re.compile(r"\A\s*(?:<\?xml[^>]*>\s*)?<OperationOutcome\b")
_CONTROL = re.compile(r"\[C\d\d\]")


def is_outcome(body: bytes) -> bool:
    """The whole answer is one OperationOutcome (JSON or XML)."""
    text = body.decode("latin-1")
    if _XML_ROOT.match(text):
        return True
    try:
        parsed = json.loads(body)
    except ValueError:
        return False
    return isinstance(parsed, dict) and parsed.get("resourceType") == "OperationOutcome"


def without_echoes(body: bytes) -> str:
    """The answer without the places a named identifier may appear: OperationOutcomes (a
    refusal names what it refuses) and Bundle links (the echo of the request's own query).
    JSON and XML only: any other format keeps everything."""
    text = body.decode("latin-1")
    try:
        parsed = json.loads(body)
    except ValueError:
        return _XML_LINK.sub("", _XML_OUTCOME.sub("", text))
    return json.dumps(_strip(parsed))


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        if value.get("resourceType") == "OperationOutcome":
            return None
        return {
            k: _strip(v)
            for k, v in value.items()
            if not (k == "link" and isinstance(v, list))  # Bundle.link, entry.link
        }
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


def judge(
    case: Case, method: str, answer: Answer, foreign: ForeignIds, named: set[str], tokened: bool
) -> list[str]:
    """What is wrong with the answer to a case (empty: it holds)."""
    problems: list[str] = []
    status, body = answer.status, answer.body
    head_text = "\n".join(f"{k}: {v}" for k, v in answer.headers)
    body_text = body.decode("latin-1")
    if status == 429 or status >= 503 or (tokened and status == 401):
        problems.append(f"inconclusive: {status} (rate limit, outage or an expired token)")
    if FORGED_HOST in body_text.lower() or FORGED_HOST in head_text.lower():
        problems.append(f"the forged host {FORGED_HOST} is in the answer")
    refusal = 400 <= status < 500 and (is_outcome(body) or (method == "HEAD" and not body))
    unnamed = (foreign.found(body_text) | foreign.found(head_text)) - named
    if unnamed:
        problems.append(f"foreign ids the request did not name: {_few(unnamed)}")
    if named and not refusal:
        echoed = (foreign.found(without_echoes(body)) | foreign.found(head_text)) & named
        if echoed:
            problems.append(f"foreign ids outside a refusal: {_few(echoed)}")
    if case.expect is Expect.REFUSED and not refusal:
        problems.append(f"expected a refusal (4xx OperationOutcome), got {status}")
    if (
        case.unsupported
        and refusal
        and body  # HEAD: no body to tell why
        and status not in (400, 401, 406)  # malformed or unauthenticated: refused before that
        and not _CONTROL.search(body_text)  # a control refused it first
    ):
        problems.append(f"an unsupported format should be 406, got {status}")
    return problems


def _few(ids: set[str]) -> str:
    shown = sorted(ids)[:6]
    return ", ".join(shown) + (f" (+{len(ids) - 6} more)" if len(ids) > 6 else "")


def describe(answer: Answer, limit: int = 400) -> str:
    ctype = dict((k.lower(), v) for k, v in answer.headers).get("content-type", "-")
    excerpt = answer.body[:limit].decode("utf-8", "replace").replace("\n", " ")
    return f"status {answer.status}, content-type {ctype}, body: {excerpt!r}"

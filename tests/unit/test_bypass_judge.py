"""The bypass corpus's own machinery, without the stack: the corpus expands as it should, and the
judge finds foreign ids in any format, forgives only what the request named inside a refusal,
and reads refusals, HEAD and unsupported formats right."""

from __future__ import annotations

import json

import pytest

from tests.integration.bypass_corpus import (
    PLACEHOLDERS,
    TOKEN_KINDS,
    TYPED_PLACEHOLDERS,
    Answer,
    Case,
    Expect,
    ForeignIds,
    Template,
    Variant,
    judge,
    load_corpus,
    placeholders,
    render,
)

FOREIGN = ForeignIds(["pat-a-000002", "obs-a-000002-1", "org-b", "pat-b-000001"])
JSON = (("content-type", "application/fhir+json"),)


def case(expect: Expect = Expect.NO_FOREIGN_DATA, unsupported: bool = False) -> Case:
    template = Template(
        id="t", cls="c", method="GET", url="Patient", expect={"triage": expect}, variants={}
    )
    return Case(template, "triage", Variant("v", unsupported=unsupported))


def outcome(text: str) -> bytes:
    return json.dumps(
        {"resourceType": "OperationOutcome", "issue": [{"diagnostics": text}]}
    ).encode()


def problems(
    c: Case,
    status: int,
    body: bytes,
    named: set[str] | None = None,
    headers: tuple[tuple[str, str], ...] = JSON,
    method: str = "GET",
) -> list[str]:
    return judge(c, method, Answer(status, headers, body), FOREIGN, named or set(), True)


# ---- the corpus ---------------------------------------------------------------------------------
def test_the_corpus_expands_into_variants() -> None:
    cases = load_corpus()
    templates = {(c.template.cls, c.template.id): c.template for c in cases}
    assert len(cases) >= 150 and len(templates) >= 40
    assert len({c.id for c in cases}) == len(cases)  # each entry names itself
    assert {c.token for c in cases} == set(TOKEN_KINDS)
    for template in templates.values():
        for name, rtype in placeholders(template):
            assert name in PLACEHOLDERS, (template.id, name)
            assert rtype is None or name in TYPED_PLACEHOLDERS, (template.id, name)
    classes = {c.template.cls for c in cases}
    assert {"read", "search", "include", "history", "batch", "head", "forwarded"} <= classes
    assert {"conditional", "paging", "binary", "export", "has", "chain"} <= classes


def test_rendering_fills_placeholders_and_encodes_the_variant() -> None:
    template = Template(
        id="t",
        cls="c",
        method="POST",
        url="Observation/_search?code={common_code}",
        expect={},
        variants={},
        form=(("patient", "{other}"),),
    )
    values = {"other": "pat-a-000002", "common_code": "http://loinc.org%7C8867-4"}
    rendered = render(
        template,
        Variant("x", params=(("_format", "application/fhir+xml"),)),
        lambda name, _: values[name],
    )
    assert rendered.url == (
        "/fhir/Observation/_search?code=http://loinc.org%7C8867-4&_format=application/fhir%2Bxml"
    )
    assert rendered.content == b"patient=pat-a-000002"
    assert FOREIGN.found(rendered.text()) == {"pat-a-000002"}


# ---- finding foreign ids -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "body",
    [
        '{"resourceType": "Patient", "id": "pat-a-000002"}',
        '<Patient xmlns="http://hl7.org/fhir"><id value="pat-a-000002"/></Patient>',
        "<http://x/fhir/Patient/pat-a-000002> a fhir:Patient .",
        "<td>Patient/pat-a-000002</td>",
        "Note for Patient/pat-a-000002.",
    ],
)
def test_foreign_ids_are_found_in_any_format(body: str) -> None:
    assert FOREIGN.found(body) == {"pat-a-000002"}


def test_foreign_ids_match_only_whole_ids() -> None:
    assert FOREIGN.found("obs-a-000002-10 xpat-a-000002 pat-a-0000021 org-bx borg-b") == set()
    assert FOREIGN.found('"obs-a-000002-1"') == {"obs-a-000002-1"}


# ---- judging -------------------------------------------------------------------------------------
def test_a_refusal_may_name_what_the_request_named_and_nothing_else() -> None:
    refused = case(Expect.REFUSED)
    named = {"pat-a-000002"}
    assert problems(refused, 403, outcome("[C08] Patient/pat-a-000002"), named) == []
    found = problems(refused, 403, outcome("[C08] pat-a-000002 is pat-b-000001's"), named)
    assert found == ["foreign ids the request did not name: pat-b-000001"]
    assert problems(refused, 200, b"{}") == ["expected a refusal (4xx OperationOutcome), got 200"]
    assert problems(refused, 500, outcome("boom")) == [
        "expected a refusal (4xx OperationOutcome), got 500"
    ]


def test_a_named_id_may_come_back_in_an_entrys_outcome_or_a_link_only() -> None:
    named = {"pat-a-000002"}
    echo = {
        "resourceType": "Bundle",
        "link": [{"relation": "self", "url": "http://x/fhir/Patient?_id=pat-a-000002"}],
        "entry": [{"response": {"status": "403", "outcome": json.loads(outcome("pat-a-000002"))}}],
    }
    assert problems(case(), 200, json.dumps(echo).encode(), named) == []
    echo["entry"].append({"resource": {"resourceType": "Patient", "id": "pat-a-000002"}})
    assert problems(case(), 200, json.dumps(echo).encode(), named) == [
        "foreign ids outside a refusal: pat-a-000002"
    ]
    xml = (
        b'<Bundle><link><relation value="self"/><url value="Patient/pat-a-000002"/></link>'
        b"<entry><response><outcome><OperationOutcome><issue><diagnostics"
        b' value="Patient/pat-a-000002"/></issue></OperationOutcome></outcome></response></entry>'
        b"</Bundle>"
    )
    assert problems(case(), 200, xml, named) == []
    turtle = b"<Patient/pat-a-000002> a fhir:OperationOutcome ."  # not JSON or XML: no pardon
    assert problems(case(), 200, turtle, named) == ["foreign ids outside a refusal: pat-a-000002"]


def test_headers_are_judged_too() -> None:
    forged = (*JSON, ("location", "https://EVIL.example/fhir/Patient/1"))
    assert problems(case(), 201, b"", headers=forged) == [
        "the forged host evil.example is in the answer"
    ]
    leaked = (*JSON, ("content-location", "http://x/fhir/Patient/pat-b-000001/_history/1"))
    assert problems(case(), 200, b"{}", headers=leaked) == [
        "foreign ids the request did not name: pat-b-000001"
    ]


def test_head_is_refused_without_a_body() -> None:
    assert problems(case(Expect.REFUSED, unsupported=True), 403, b"", method="HEAD") == []
    assert problems(case(Expect.REFUSED), 200, b"", method="HEAD") == [
        "expected a refusal (4xx OperationOutcome), got 200"
    ]


def test_an_unsupported_format_is_refused_with_406_unless_a_control_refused_first() -> None:
    unsupported = case(unsupported=True)
    assert unsupported.expect is Expect.REFUSED
    assert problems(unsupported, 406, outcome("_format=ttl is not served here")) == []
    assert problems(unsupported, 403, outcome("[C05] no scope for Condition")) == []
    assert problems(unsupported, 400, outcome("malformed")) == []
    assert problems(unsupported, 404, outcome("not found")) == [
        "an unsupported format should be 406, got 404"
    ]
    turtle = (("content-type", "text/turtle"),)
    assert problems(unsupported, 200, b"@prefix fhir: <x> .", headers=turtle) == [
        "expected a refusal (4xx OperationOutcome), got 200"
    ]


def test_rate_limits_outages_and_expired_tokens_are_inconclusive() -> None:
    for status in (401, 429, 503):
        found = problems(case(Expect.REFUSED), status, outcome("no"))
        assert found and found[0].startswith("inconclusive"), status

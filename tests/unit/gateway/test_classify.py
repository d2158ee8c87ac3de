"""Request classification: every FHIR RESTful interaction, and refusal of everything else."""

from __future__ import annotations

import string
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.classify import (
    MAX_PARAMS,
    ClassifyError,
    FhirRequest,
    IncludeValue,
    Interaction,
    ParamName,
    classify,
    parse_include_value,
    parse_query,
    parse_search_param_name,
)

I = Interaction  # noqa: E741


def c(method: str, path: str, query: str = "", **kw: str | None) -> FhirRequest:
    return classify(method, "/fhir" + path, query, **kw)  # type: ignore[arg-type]


# -- instance level ----------------------------------------------------------------------------


def test_read() -> None:
    req = c("GET", "/Patient/123", "_format=json")
    assert req == FhirRequest(
        interaction=I.READ,
        method="GET",
        level="instance",
        resource_type="Patient",
        resource_id="123",
        params=(("_format", "json"),),
    )
    assert not req.is_search and not req.is_write and not req.is_conditional


@pytest.mark.parametrize(
    ("method", "interaction"),
    [("PUT", I.UPDATE), ("PATCH", I.PATCH), ("DELETE", I.DELETE), ("HEAD", I.READ)],
)
def test_instance_methods(method: str, interaction: Interaction) -> None:
    req = c(method, "/Observation/a-1.b")
    assert (req.interaction, req.resource_type, req.resource_id) == (
        interaction,
        "Observation",
        "a-1.b",
    )
    assert req.method == method
    assert req.is_write == (method != "HEAD")


def test_vread_and_instance_history() -> None:
    vread = c("GET", "/Patient/123/_history/2")
    assert (vread.interaction, vread.resource_id, vread.version_id) == (I.VREAD, "123", "2")
    hist = c("GET", "/Patient/123/_history", "_count=10")
    assert (hist.interaction, hist.level, hist.params) == (
        I.HISTORY_INSTANCE,
        "instance",
        (("_count", "10"),),
    )


def test_post_to_instance_is_405() -> None:
    with pytest.raises(ClassifyError) as info:
        c("POST", "/Patient/123")
    assert info.value.status == 405
    assert info.value.code == "not-supported"


# -- type level --------------------------------------------------------------------------------


def test_search_type_keeps_repeats_and_decodes() -> None:
    req = c("GET", "/Observation", "code=a%7Cb&date=ge2020&date=le2021&note=x+y&_count=5")
    assert req.interaction is I.SEARCH_TYPE
    assert req.level == "type"
    assert req.params == (
        ("code", "a|b"),
        ("date", "ge2020"),
        ("date", "le2021"),
        ("note", "x y"),
        ("_count", "5"),
    )
    assert req.param_values("date") == ("ge2020", "le2021")
    assert req.param_names == frozenset({"code", "date", "note", "_count"})
    assert req.is_search


def test_post_search_merges_form_body_after_query() -> None:
    req = c("POST", "/Observation/_search", "_count=5", form_body="patient=Patient%2F1&code=x\r\n")
    assert req.interaction is I.SEARCH_TYPE
    assert req.params == (("_count", "5"), ("patient", "Patient/1"), ("code", "x"))


def test_form_body_ignored_outside_search() -> None:
    req = c("POST", "/Observation", form_body="patient=1")
    assert req.interaction is I.CREATE
    assert req.params == ()


def test_create_and_type_history() -> None:
    assert c("POST", "/Patient").interaction is I.CREATE
    hist = c("GET", "/Patient/_history")
    assert (hist.interaction, hist.resource_type) == (I.HISTORY_TYPE, "Patient")


@pytest.mark.parametrize(
    ("method", "interaction"),
    [("PUT", I.UPDATE), ("PATCH", I.PATCH), ("DELETE", I.DELETE)],
)
def test_conditional_writes(method: str, interaction: Interaction) -> None:
    req = c(method, "/Patient", "identifier=sys%7C1")
    assert req.interaction is interaction
    assert req.resource_id is None
    assert req.is_conditional
    assert req.params == (("identifier", "sys|1"),)


def test_conditional_delete_without_params_refused() -> None:
    with pytest.raises(ClassifyError, match="needs search parameters"):
        c("DELETE", "/Patient")


# -- system level ------------------------------------------------------------------------------


def test_metadata() -> None:
    req = c("GET", "/metadata")
    assert (req.interaction, req.is_metadata, req.level) == (I.CAPABILITIES, True, "system")
    with pytest.raises(ClassifyError):
        c("POST", "/metadata")


def test_smart_configuration() -> None:
    req = c("GET", "/.well-known/smart-configuration")
    assert req.interaction is I.SMART_CONFIGURATION
    assert req.is_smart_config and not req.is_metadata
    with pytest.raises(ClassifyError) as info:
        c("GET", "/.well-known/openid-configuration")
    assert info.value.status == 404


def test_batch_and_system_search_and_history() -> None:
    assert c("POST", "").interaction is I.BATCH
    assert c("POST", "/").interaction is I.BATCH
    search = c("GET", "", "_type=Patient,Observation")
    assert (search.interaction, search.params) == (
        I.SEARCH_SYSTEM,
        (("_type", "Patient,Observation"),),
    )
    assert c("GET", "/_history").interaction is I.HISTORY_SYSTEM
    post = c("POST", "/_search", form_body="_type=Patient")
    assert (post.interaction, post.params) == (I.SEARCH_SYSTEM, (("_type", "Patient"),))
    with pytest.raises(ClassifyError):
        c("DELETE", "")


# -- operations --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "level", "rtype", "rid", "vid", "op"),
    [
        ("GET", "/$export", "system", None, None, None, "$export"),
        ("POST", "/$export", "system", None, None, None, "$export"),
        ("GET", "/Patient/$export", "type", "Patient", None, None, "$export"),
        ("GET", "/Group/1/$export", "instance", "Group", "1", None, "$export"),
        ("GET", "/Patient/1/$everything", "instance", "Patient", "1", None, "$everything"),
        ("POST", "/Patient/$validate", "type", "Patient", None, None, "$validate"),
        ("POST", "/Patient/1/$validate", "instance", "Patient", "1", None, "$validate"),
        ("GET", "/Patient/1/$meta", "instance", "Patient", "1", None, "$meta"),
        ("POST", "/Patient/1/$meta-add", "instance", "Patient", "1", None, "$meta-add"),
        ("GET", "/Patient/1/_history/3/$meta", "instance", "Patient", "1", "3", "$meta"),
        ("DELETE", "/$export-poll-status", "system", None, None, None, "$export-poll-status"),
    ],
)
def test_operations(
    method: str,
    path: str,
    level: str,
    rtype: str | None,
    rid: str | None,
    vid: str | None,
    op: str,
) -> None:
    req = c(method, path)
    assert req.interaction is I.OPERATION
    assert (req.level, req.resource_type, req.resource_id, req.version_id, req.operation) == (
        level,
        rtype,
        rid,
        vid,
        op,
    )


def test_operation_method_and_name_checks() -> None:
    with pytest.raises(ClassifyError) as info:
        c("DELETE", "/$export")
    assert info.value.status == 405
    with pytest.raises(ClassifyError, match="not a valid operation name"):
        c("GET", "/Patient/$1bad")
    with pytest.raises(ClassifyError):
        c("GET", "/$export/Patient")


# -- compartments ------------------------------------------------------------------------------


def test_compartment_search() -> None:
    req = c("GET", "/Patient/123/Observation", "code=x")
    assert req.interaction is I.SEARCH_COMPARTMENT
    assert req.compartment == ("Patient", "123")
    assert req.resource_type == "Observation"
    assert req.resource_id is None
    assert req.params == (("code", "x"),)
    assert req.is_search


def test_compartment_search_all_types_and_post() -> None:
    assert c("GET", "/Patient/123/*").resource_type == "*"
    post = c("POST", "/Patient/123/Condition/_search", form_body="code=y")
    assert (post.interaction, post.params) == (I.SEARCH_COMPARTMENT, (("code", "y"),))
    assert c("GET", "/Encounter/e1/Observation").compartment == ("Encounter", "e1")


def test_non_compartment_type_refused() -> None:
    with pytest.raises(ClassifyError, match="not a compartment"):
        c("GET", "/Observation/1/Patient")


# -- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "query", "message"),
    [
        ("GET", "/fhir/Patient/../Group/1", "", "traversal"),
        ("GET", "/fhir/Patient/%2e%2e/x", "", "traversal"),
        ("GET", "/fhir/Patient/.", "", "traversal"),
        ("GET", "/fhir/Patient//1", "", "empty path segment"),
        ("GET", "/fhir//Patient", "", "empty path segment"),
        ("GET", "/fhir/Patient/1%2F2", "", "encoded '/'"),
        ("GET", "/fhir/Patient/1%5c2", "", "encoded '/'"),
        ("GET", "/fhir/Patient/" + "a" * 65, "", "not a valid resource id"),
        ("GET", "/fhir/Patient/a_b", "", "not a valid resource id"),
        ("GET", "/fhir/Patient/1/_history/v_1", "", "not a valid version id"),
        ("GET", "/fhir/patient/1", "", "not a FHIR resource type name"),
        ("GET", "/fhir/P/1", "", "not a FHIR resource type name"),
        ("GET", "/fhir/Patient1", "", "not a FHIR resource type name"),
        ("GET", "/fhir/_foo", "", "unknown system-level path"),
        ("GET", "/fhir/Patient/1/Observation/2", "", "unrecognised path"),
        ("GET", "/fhir/a/b/c/d/e/f", "", "too many segments"),
        ("GET", "/fhirx/Patient", "", "outside the FHIR base"),
        ("GET", "/other/Patient", "", "outside the FHIR base"),
        ("GET", "/fhir/Patient/1%zz", "", "malformed percent-encoding"),
        ("GET", "/fhir/Patient/%ff", "", "not valid UTF-8"),
        ("GET", "/fhir/Patient/é", "", "printable ASCII"),
        ("GET", "/fhir/Patient", "name=%zz", "malformed percent-encoding"),
        ("GET", "/fhir/Patient", "name=%c3%28", "not valid UTF-8"),
        ("GET", "/fhir/Patient", "=x", "empty name"),
        ("GET", "/fhir/Patient", "a=b c", "printable ASCII"),
        ("BREW", "/fhir/Patient", "", "not allowed"),
        ("G E T", "/fhir/Patient", "", "unsupported HTTP method"),
    ],
)
def test_malformed_requests(method: str, path: str, query: str, message: str) -> None:
    with pytest.raises(ClassifyError) as info:
        classify(method, path, query)
    assert message in info.value.message
    assert info.value.status in (400, 405)


def test_too_many_params() -> None:
    with pytest.raises(ClassifyError, match="too many parameters"):
        c("GET", "/Patient", "&".join(["a=1"] * (MAX_PARAMS + 1)))
    assert len(c("GET", "/Patient", "&".join(["a=1"] * MAX_PARAMS)).params) == MAX_PARAMS


def test_base_path_variants() -> None:
    assert classify("GET", "/Patient/1", "", base_path="").resource_id == "1"
    assert classify("GET", "/Patient/1", "", base_path="/").resource_id == "1"
    assert classify("GET", "/api/fhir/Patient/1", "", base_path="/api/fhir/").resource_id == "1"
    assert classify("GET", "/fhir/Patient/", "").interaction is I.SEARCH_TYPE


def test_percent_encoded_segments_decoded_once() -> None:
    req = c("GET", "/%50atient/%31")
    assert (req.resource_type, req.resource_id) == ("Patient", "1")
    with pytest.raises(ClassifyError):
        c("GET", "/Patient/%2531")  # "%31" after one decode: not an id


def test_query_edge_cases() -> None:
    assert parse_query("") == ()
    assert parse_query("a=1&&b=&c") == (("a", "1"), ("b", ""), ("c", ""))
    assert parse_query("a=1;b=2") == (("a", "1;b=2"),)
    assert parse_query("date=ge2020-01-01T00:00:00%2B01:00") == (
        ("date", "ge2020-01-01T00:00:00+01:00"),
    )
    assert parse_query("x=a=b") == (("x", "a=b"),)


# -- search parameter names --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("subject", ParamName("subject", None, ())),
        ("code:text", ParamName("code", "text", ())),
        ("subject:Patient", ParamName("subject", "Patient", ())),
        ("subject.name", ParamName("subject", None, ("name",))),
        ("subject:Patient.name", ParamName("subject", "Patient", ("name",))),
        (
            "subject:Patient.organization:Organization.name",
            ParamName("subject", "Patient", ("organization:Organization", "name")),
        ),
        ("_include", ParamName("_include", None, ())),
        ("_include:iterate", ParamName("_include", "iterate", ())),
        ("_revinclude", ParamName("_revinclude", None, ())),
        ("code-value-quantity", ParamName("code-value-quantity", None, ())),
        ("_lastUpdated", ParamName("_lastUpdated", None, ())),
        ("_has:Observation:patient:code", ParamName("_has", "Observation:patient", ("code",))),
        (
            "_has:Observation:patient:_has:AuditEvent:entity:agent",
            ParamName("_has", "Observation:patient", ("_has:AuditEvent:entity:agent",)),
        ),
        (
            "_has:Observation:subject:code:text",
            ParamName("_has", "Observation:subject", ("code:text",)),
        ),
    ],
)
def test_parse_search_param_name(name: str, expected: ParamName) -> None:
    assert parse_search_param_name(name) == expected


@pytest.mark.parametrize(
    "name",
    [
        "",
        ":x",
        ".x",
        "subject.",
        "subject..name",
        "a b",
        "_has",
        "_has:Observation:patient",
        "_has:observation:patient:code",
        "_has:Observation::code",
        "code:",
        "subject:Patient.n!",
    ],
)
def test_malformed_search_param_names(name: str) -> None:
    with pytest.raises(ClassifyError):
        parse_search_param_name(name)


def test_include_values() -> None:
    assert parse_include_value("Observation:subject:Patient") == IncludeValue(
        "Observation", "subject", "Patient"
    )
    assert parse_include_value("MedicationRequest:medication") == IncludeValue(
        "MedicationRequest", "medication", None
    )
    assert parse_include_value("*") == IncludeValue("*", "*", None)
    assert parse_include_value("Observation:*") == IncludeValue("Observation", "*", None)
    for bad in ("Observation", "observation:subject", "A:b:c:d", "Observation:sub ject"):
        with pytest.raises(ClassifyError):
            parse_include_value(bad)


# -- properties --------------------------------------------------------------------------------

methods = st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "get"])
ascii_url = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=60)
segment = st.one_of(
    st.sampled_from(
        ["Patient", "Observation", "1", "_history", "_search", "$export", "..", "*", "%2e", ""]
    ),
    ascii_url,
)


@given(methods, st.text(), st.text(), st.one_of(st.none(), st.text()))
def test_classify_raises_only_classify_error(
    method: str, path: str, query: str, body: str | None
) -> None:
    try:
        classify(method, path, query, form_body=body)
    except ClassifyError as exc:
        assert exc.status in (400, 404, 405)


@given(methods, st.lists(segment, max_size=6), ascii_url, st.one_of(st.none(), ascii_url))
def test_classify_structured_paths(
    method: str, segments: list[str], query: str, body: str | None
) -> None:
    try:
        req = classify(method, "/fhir/" + "/".join(segments), query, form_body=body)
    except ClassifyError:
        return
    for part in (req.resource_type, req.resource_id, req.version_id):
        assert part is None or part not in (".", "..")
    if req.resource_id is not None:
        assert 1 <= len(req.resource_id) <= 64


param_chars = string.ascii_letters + string.digits + "-_.:"
params_strategy = st.lists(
    st.tuples(st.text(param_chars, min_size=1, max_size=12), st.text(max_size=20)), max_size=8
)


@given(params_strategy)
def test_query_round_trip(params: list[tuple[str, str]]) -> None:
    query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in params)
    assert parse_query(query) == tuple(params)
    assert c("GET", "/Observation", query).params == tuple(params)


@given(st.text(max_size=80))
def test_param_name_parser_raises_only_classify_error(name: str) -> None:
    try:
        parsed = parse_search_param_name(name)
    except ClassifyError:
        return
    assert parsed.base


@given(st.text(max_size=80))
def test_include_parser_raises_only_classify_error(value: str) -> None:
    try:
        parsed = parse_include_value(value)
    except ClassifyError:
        return
    assert parsed.source_type == "*" or parsed.source_type[0].isupper()
    assert ":".join(p for p in parsed if p) == value or value == "*"


@given(
    st.from_regex(r"[A-Z][A-Za-z]{1,20}", fullmatch=True),
    st.from_regex(r"[A-Za-z0-9\-.]{1,64}", fullmatch=True).filter(lambda s: s not in (".", "..")),
)
def test_valid_reads_classify(rtype: str, rid: str) -> None:
    req = c("GET", f"/{rtype}/{rid}")
    assert (req.interaction, req.resource_type, req.resource_id) == (I.READ, rtype, rid)


@pytest.mark.parametrize("name", ["_count", "_getpagesoffset", "_offset"])
@pytest.mark.parametrize("value", ["abc", "-1", "1.5", "", "１", "9999999999"])
def test_counts_must_be_whole_numbers(name: str, value: str) -> None:
    # HAPI fails with a 500 on them (`$everything?_count=abc`): refused first, as a bad request
    with pytest.raises(ClassifyError, match="must be a whole number") as caught:
        classify("GET", "/fhir/Patient/p1/$everything", f"{name}={quote(value)}", "/fhir")
    assert caught.value.status == 400
    assert classify("GET", "/fhir/Patient", f"{name}=20", "/fhir").params == ((name, "20"),)

"""SMART scope engine: grammar, sets, decisions (C01, C03, C05)."""

from __future__ import annotations

import itertools
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from labcore.scopes import (
    SPECIAL_SCOPES,
    InvalidScope,
    ResourceScope,
    ScopeError,
    ScopeSet,
    interaction_permission,
    parse_scope,
    parse_scopes,
)

LAB = "http://terminology.hl7.org/CodeSystem/observation-category|laboratory"
VITALS = "http://terminology.hl7.org/CodeSystem/observation-category|vital-signs"

# -- single tokens: the SMART spec examples ---------------------------------------------------


def test_v2_scope_with_category_constraint() -> None:
    raw = f"patient/Observation.rs?category={LAB}"
    scope = parse_scope(raw)
    assert scope == ResourceScope(
        context="patient",
        resource_type="Observation",
        permissions=frozenset({"r", "s"}),
        constraints=(("category", LAB),),
        version=2,
        raw=raw,
    )
    assert scope.permission_string == "rs"


def test_v1_read_on_wildcard() -> None:
    scope = parse_scope("patient/*.read")
    assert scope.context == "patient"
    assert scope.resource_type == "*"
    assert scope.is_wildcard
    assert scope.permissions == frozenset("rs")
    assert scope.version == 1
    assert scope.canonical == "patient/*.rs"


def test_v1_star_star_is_everything() -> None:
    scope = parse_scope("user/*.*")
    assert scope.permissions == frozenset("cruds")
    assert scope.version == 1
    assert scope.canonical == "user/*.cruds"


def test_v1_write_is_cud() -> None:
    assert parse_scope("user/Patient.write").permissions == frozenset("cud")


def test_v2_system_cruds() -> None:
    scope = parse_scope("system/*.cruds")
    assert (scope.context, scope.resource_type, scope.version) == ("system", "*", 2)
    assert scope.permissions == frozenset("cruds")


@pytest.mark.parametrize(
    ("token", "reason_part"),
    [
        ("patient/Observation.sr", "in-order subset"),
        ("patient/observation.rs", "not '*' or a FHIR type name"),
        ("Patient/Observation.read", "lower-case 'patient'"),
        ("patient/Observation.", "in-order subset"),
        ("patient/Observation", "missing '.permissions'"),
        ("patient/Observation.rr", "in-order subset"),
        ("patient/Observation.x", "in-order subset"),
        ("patient/Observation.Read", "in-order subset"),
        ("patient/O.rs", "FHIR type name"),
        ("patient/.rs", "FHIR type name"),
        ("patient/Obs1.rs", "FHIR type name"),
        ("patient/Observation.read?category=x", "SMART v2 scopes only"),
        ("patient/Observation.rs?", "empty constraint"),
        ("patient/Observation.rs?=x", "empty parameter name"),
        ("patient/Observation.rs?category=", "empty value"),
        ("patient/Observation.rs?category", "malformed constraint"),
        ("patient/Observation.rs?category=%ff", "malformed constraint"),
        ("clinic/Observation.rs", "unknown context"),
        ("Observation.rs", "not a resource scope"),
        ("", "not allowed"),
        ('patient/Observation.rs?code="x"', "not allowed"),
    ],
)
def test_invalid_tokens_raise_scope_error(token: str, reason_part: str) -> None:
    with pytest.raises(ScopeError) as info:
        parse_scope(token)
    assert reason_part in info.value.reason
    assert info.value.token == token


def test_constraints_keep_order_repeats_and_decode() -> None:
    scope = parse_scope("patient/Observation.rs?category=a%7Cb&code=1+2&category=c")
    assert scope.constraints == (("category", "a|b"), ("code", "1 2"), ("category", "c"))


def test_every_ordering_of_every_subset_of_cruds() -> None:
    """Exactly the in-order, duplicate-free, non-empty subsets of cruds are valid v2 perms."""
    valid = 0
    for size in range(1, 6):
        for perms in itertools.permutations("cruds", size):
            text = "".join(perms)
            in_order = list(perms) == sorted(perms, key="cruds".index)
            if in_order:
                assert parse_scope(f"user/Patient.{text}").permissions == frozenset(text)
                valid += 1
            else:
                with pytest.raises(ScopeError):
                    parse_scope(f"user/Patient.{text}")
    assert valid == 31


# -- scope strings -----------------------------------------------------------------------------


def test_scope_string_sorted_into_kinds() -> None:
    text = (
        "launch/patient openid fhirUser offline_access patient/Condition.rs "
        "patient/observation.rs email Patient/Observation.read patient/*.read launch/foo"
    )
    scopes = parse_scopes(text)
    assert [s.raw for s in scopes.resource_scopes] == ["patient/Condition.rs", "patient/*.read"]
    assert scopes.special == frozenset({"launch/patient", "openid", "fhirUser", "offline_access"})
    assert scopes.unknown == ("email", "launch/foo")
    assert [i.raw for i in scopes.invalid] == ["patient/observation.rs", "Patient/Observation.read"]
    assert scopes.has_offline_access
    assert not scopes.has_online_access
    assert scopes.contexts == frozenset({"patient"})
    assert scopes.has_context("patient")
    assert not scopes.has_context("system")
    assert scopes.resource_types == frozenset({"Condition", "*"})
    assert [s.raw for s in scopes.wildcard_scopes] == ["patient/*.read"]
    assert str(scopes) == text


def test_all_special_scopes_recognised() -> None:
    scopes = parse_scopes(" ".join(sorted(SPECIAL_SCOPES)))
    assert scopes.special == SPECIAL_SCOPES
    assert scopes.resource_scopes == scopes.unknown == scopes.invalid == ()


def test_duplicates_and_extra_spaces() -> None:
    scopes = parse_scopes("  patient/Patient.r  patient/Patient.r openid ")
    assert scopes.tokens == ("patient/Patient.r", "openid")
    assert len(scopes.resource_scopes) == 1


def test_tab_is_not_a_separator() -> None:
    scopes = parse_scopes("patient/Patient.r\tpatient/Observation.r")
    assert scopes.resource_scopes == ()
    assert len(scopes.invalid) == 1


def test_url_like_unknown_scope_is_unknown_not_invalid() -> None:
    scopes = parse_scopes("api://backend/.default")
    assert scopes.unknown == ("api://backend/.default",)
    assert scopes.invalid == ()


def test_empty_and_oversized_and_non_string() -> None:
    assert parse_scopes("") == ScopeSet()
    huge = parse_scopes("openid " * 5000)
    assert huge.resource_scopes == () and len(huge.invalid) == 1
    assert parse_scopes(None).invalid[0].reason == "not a string"  # type: ignore[arg-type]


def test_scope_set_is_cached() -> None:
    assert parse_scopes("patient/Patient.r") is parse_scopes("patient/Patient.r")


# -- decisions ---------------------------------------------------------------------------------


def test_unconstrained_read_allowed() -> None:
    scopes = parse_scopes("patient/Observation.rs")
    decision = scopes.permits(["patient"], "Observation", "r")
    assert decision.allowed
    assert decision.matched is not None and decision.matched.raw == "patient/Observation.rs"
    assert decision.needs_result_filter == ()
    assert not decision.conditional


def test_missing_permission_denied_with_reason() -> None:
    decision = parse_scopes("patient/Observation.rs").permits(["patient"], "Observation", "c")
    assert not decision.allowed
    assert decision.matched is None
    assert decision.reason == "no granted scope covers patient/Observation.c"


def test_other_type_denied() -> None:
    decision = parse_scopes("patient/Observation.rs").permits("patient", "Condition", "r")
    assert not decision.allowed


def test_context_is_the_callers_choice() -> None:
    scopes = parse_scopes("user/Observation.rs")
    assert not scopes.permits(["patient"], "Observation", "r").allowed
    assert scopes.permits(["patient", "user"], "Observation", "r").allowed
    assert not scopes.permits([], "Observation", "r").allowed


def test_wildcard_covers_any_type_and_star_needs_wildcard() -> None:
    scopes = parse_scopes("patient/*.read patient/Observation.rs")
    decision = scopes.permits(["patient"], "Condition", "s")
    assert decision.allowed and decision.matched is not None
    assert decision.matched.raw == "patient/*.read"
    # a type-specific scope is reported in preference to the wildcard
    assert scopes.permits(["patient"], "Observation", "r").matched.raw == (  # type: ignore[union-attr]
        "patient/Observation.rs"
    )
    only_specific = parse_scopes("patient/Observation.rs")
    assert not only_specific.permits(["patient"], "*", "s").allowed
    assert scopes.permits(["patient"], "*", "s").allowed


def test_constrained_search_needs_exact_param() -> None:
    scopes = parse_scopes(f"patient/Observation.rs?category={LAB}")
    ok = scopes.permits(["patient"], "Observation", "s", [("category", LAB), ("date", "gt2020")])
    assert ok.allowed
    assert ok.needs_result_filter == (("category", LAB),)
    missing = scopes.permits(["patient"], "Observation", "s", [("date", "gt2020")])
    assert not missing.allowed
    assert "category=" in missing.reason
    other = scopes.permits(["patient"], "Observation", "s", [("category", VITALS)])
    assert not other.allowed
    no_system = scopes.permits(["patient"], "Observation", "s", [("category", "laboratory")])
    assert not no_system.allowed
    or_list = scopes.permits(["patient"], "Observation", "s", [("category", f"{LAB},{VITALS}")])
    assert not or_list.allowed
    modifier = scopes.permits(["patient"], "Observation", "s", [("category:not", LAB)])
    assert not modifier.allowed


def test_constrained_read_is_conditional() -> None:
    scopes = parse_scopes(f"patient/Observation.rs?category={LAB}")
    decision = scopes.permits(["patient"], "Observation", "r")
    assert decision.allowed
    assert decision.conditional
    assert decision.needs_result_filter == (("category", LAB),)
    assert decision.result_filter_any == ((("category", LAB),),)


def test_unconstrained_scope_wins_over_constrained() -> None:
    scopes = parse_scopes(f"patient/Observation.rs?category={LAB} patient/Observation.rs")
    for perm, params in (("r", []), ("s", []), ("s", [("category", LAB)])):
        decision = scopes.permits(["patient"], "Observation", perm, params)
        assert decision.allowed
        assert decision.needs_result_filter == ()
        assert decision.matched is not None and decision.matched.constraints == ()


def test_unconstrained_wildcard_wins_over_constrained_specific() -> None:
    scopes = parse_scopes(f"patient/Observation.rs?category={LAB} patient/*.rs")
    decision = scopes.permits(["patient"], "Observation", "r")
    assert decision.allowed and decision.needs_result_filter == ()
    assert decision.matched is not None and decision.matched.raw == "patient/*.rs"


def test_several_constrained_scopes_any_of() -> None:
    scopes = parse_scopes(
        f"patient/Observation.rs?category={LAB} patient/Observation.rs?category={VITALS}"
    )
    read = scopes.permits(["patient"], "Observation", "r")
    assert read.allowed
    assert read.needs_result_filter == (("category", LAB),)
    assert read.result_filter_any == ((("category", LAB),), (("category", VITALS),))
    search = scopes.permits(["patient"], "Observation", "s", [("category", VITALS)])
    assert search.allowed
    assert search.needs_result_filter == (("category", VITALS),)
    assert search.result_filter_any[0] == (("category", VITALS),)


def test_constraint_with_two_params_needs_both() -> None:
    scopes = parse_scopes("patient/Observation.s?category=laboratory&code=1234-5")
    assert not scopes.permits("patient", "Observation", "s", [("category", "laboratory")]).allowed
    both = [("code", "1234-5"), ("category", "laboratory")]
    assert scopes.permits("patient", "Observation", "s", both).allowed


def test_bad_permission_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="permission must be"):
        parse_scopes("patient/*.rs").permits("patient", "Observation", "read")


@pytest.mark.parametrize(
    ("interaction", "permission"),
    [
        ("read", "r"),
        ("vread", "r"),
        ("history-instance", "r"),
        ("search-type", "s"),
        ("search-system", "s"),
        ("search-compartment", "s"),
        ("history-type", "s"),
        ("history-system", "s"),
        ("create", "c"),
        ("update", "u"),
        ("patch", "u"),
        ("delete", "d"),
    ],
)
def test_interaction_permission(interaction: str, permission: str) -> None:
    assert interaction_permission(interaction) == permission


@pytest.mark.parametrize("interaction", ["operation", "batch", "capabilities", "nonsense"])
def test_interaction_without_single_permission(interaction: str) -> None:
    with pytest.raises(ValueError, match="no single SMART permission"):
        interaction_permission(interaction)


def test_interaction_permission_accepts_classify_enum() -> None:
    from gateway.classify import Interaction

    assert interaction_permission(Interaction.SEARCH_COMPARTMENT) == "s"


# -- properties --------------------------------------------------------------------------------

contexts = st.sampled_from(["patient", "user", "system"])
types = st.one_of(st.just("*"), st.from_regex(r"[A-Z][A-Za-z]{1,20}", fullmatch=True))
v2_perms = st.sets(st.sampled_from("cruds"), min_size=1).map(
    lambda s: "".join(p for p in "cruds" if p in s)
)
param_text = st.text(alphabet=string.ascii_letters + string.digits + "-_", min_size=1, max_size=8)
value_text = st.text(min_size=1, max_size=20)


@st.composite
def valid_v2_tokens(draw: st.DrawFn) -> tuple[str, ResourceScope]:
    from urllib.parse import urlencode

    ctx, rtype, perms = draw(contexts), draw(types), draw(v2_perms)
    constraints = tuple(draw(st.lists(st.tuples(param_text, value_text), max_size=3)))
    token = f"{ctx}/{rtype}.{perms}"
    if constraints:
        token += "?" + urlencode(constraints)
    return token, ResourceScope(ctx, rtype, frozenset(perms), constraints, 2, token)  # type: ignore[arg-type]


@given(st.text())
def test_parse_scopes_never_raises(text: str) -> None:
    scopes = parse_scopes(text)
    assert isinstance(scopes, ScopeSet)
    seen = {s.raw for s in scopes.resource_scopes} | scopes.special | set(scopes.unknown)
    seen |= {i.raw for i in scopes.invalid}
    assert seen == set(scopes.tokens)


@given(st.text())
def test_parse_scope_raises_only_scope_error(text: str) -> None:
    try:
        scope = parse_scope(text)
    except ScopeError as exc:
        assert exc.token == text
    else:
        assert scope.raw == text


@given(contexts, st.text(max_size=30), st.text(max_size=30), st.text(max_size=30))
def test_parse_scope_structured_fuzz(ctx: str, rtype: str, perms: str, query: str) -> None:
    token = f"{ctx}/{rtype}.{perms}?{query}"
    try:
        scope = parse_scope(token)
    except ScopeError as exc:
        assert exc.reason
        return
    assert (scope.context, scope.resource_type, scope.version) == (ctx, rtype, 2)
    assert scope.constraints  # a '?' always needs constraints


@given(valid_v2_tokens())
def test_valid_v2_tokens_round_trip(case: tuple[str, ResourceScope]) -> None:
    token, expected = case
    parsed = parse_scope(token)
    assert parsed == expected
    assert parse_scope(parsed.canonical).permissions == parsed.permissions
    assert parse_scope(parsed.canonical).constraints == parsed.constraints


@given(st.lists(valid_v2_tokens(), max_size=6))
def test_scope_string_round_trip(cases: list[tuple[str, ResourceScope]]) -> None:
    text = " ".join(token for token, _ in cases)
    scopes = parse_scopes(text)
    assert scopes.invalid == ()
    assert scopes.tokens == tuple(dict.fromkeys(token for token, _ in cases))
    assert [s.raw for s in scopes.resource_scopes] == list(scopes.tokens)
    assert parse_scopes(str(scopes)) == scopes


V1_TO_V2 = {"read": "rs", "write": "cud", "*": "cruds"}


@given(contexts, types, st.sampled_from(sorted(V1_TO_V2)), st.sampled_from("cruds"))
def test_v1_and_v2_spellings_are_equivalent(ctx: str, rtype: str, v1: str, perm: str) -> None:
    old, new = parse_scope(f"{ctx}/{rtype}.{v1}"), parse_scope(f"{ctx}/{rtype}.{V1_TO_V2[v1]}")
    assert (old.version, new.version) == (1, 2)
    assert old.permissions == new.permissions
    assert old.canonical == new.canonical
    target = "Observation" if rtype == "*" else rtype
    a = parse_scopes(old.raw).permits([ctx], target, perm)
    b = parse_scopes(new.raw).permits([ctx], target, perm)
    assert a.allowed == b.allowed == (perm in V1_TO_V2[v1])


@given(
    st.lists(valid_v2_tokens(), min_size=1, max_size=5),
    contexts,
    types,
    st.sampled_from("cruds"),
)
def test_permits_agrees_with_a_naive_model(
    cases: list[tuple[str, ResourceScope]], ctx: str, rtype: str, perm: str
) -> None:
    scopes = parse_scopes(" ".join(token for token, _ in cases))
    decision = scopes.permits([ctx], rtype, perm)  # no search params given
    covering = [
        s
        for _, s in cases
        if s.context == ctx and perm in s.permissions and s.resource_type in ("*", rtype)
    ]
    unconstrained = [s for s in covering if not s.constraints]
    if unconstrained:
        assert decision.allowed and decision.needs_result_filter == ()
    elif covering and perm != "s":
        assert decision.allowed and decision.needs_result_filter
    else:  # nothing covers it, or a constrained search that carries none of the constraints
        assert not decision.allowed
    if decision.allowed:
        assert decision.matched in covering


def test_invalid_token_carries_its_reason() -> None:
    scopes = parse_scopes("patient/observation.rs")
    assert scopes.invalid == (
        InvalidScope(
            "patient/observation.rs", "resource type 'observation' is not '*' or a FHIR type name"
        ),
    )

"""Hypothesis strategies for what a FHIR client controls, shared by the gateway's two fuzzes
(tests/unit/gateway/test_fuzz_answers.py offline, tests/integration/test_fuzz_real_stack.py
against the real stack)."""

from __future__ import annotations

from typing import TypeVar

from hypothesis import strategies as st

T = TypeVar("T")


def weighted(*choices: tuple[int, st.SearchStrategy[T]]) -> st.SearchStrategy[T]:
    """One of the strategies, each as often as its weight says (`st.one_of` drops repeats);
    shrinks towards the first."""
    pool = tuple(strategy for weight, strategy in choices for _ in range(weight))
    return st.sampled_from(pool).flatmap(lambda strategy: strategy)


def pairs(name: str, *values: str) -> list[tuple[str, str]]:
    """`(name, value)` for each value: query parameters to draw from."""
    return [(name, value) for value in values]


# every media type a FHIR server reads in Accept, the ones the gateway does not serve, wildcards
MEDIA = (
    "application/fhir+json",
    "application/json",
    "application/json+fhir",
    "application/fhir+xml",
    "application/xml+fhir",
    "application/xml",
    "text/xml",
    "text/turtle",
    "text/html",
    "text/plain",
    "application/octet-stream",
    "application/fhir+ndjson",
    "*/*",
    "application/*",
    "text/*",
    "garbage",
    "",
)
MEDIA_PARAMS = ("", "", ";q=0", ";q=0.5", ";q=1", ";q=bogus", "; fhirVersion=4.0", ";charset=utf-8")
accept = st.lists(
    st.builds(str.__add__, st.sampled_from(MEDIA), st.sampled_from(MEDIA_PARAMS)),
    min_size=1,
    max_size=3,
).map(", ".join)

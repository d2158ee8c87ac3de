"""`canonical` writes an entry with orjson where orjson writes exactly what the documented
recipe (`json.dumps(e, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
allow_nan=False)`) writes, and with the json module everywhere else: the bytes, and so every
hash of every existing log, are the same whichever encoder wrote them."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import json
import random
from collections import OrderedDict
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.audit import canonical
from gateway.audit.chain import _orjson_writes_the_same, _sanitize
from tests.unit.gateway.audit.helpers import record


def recipe(entry: Any) -> bytes:
    """The module docstring's recipe, with its documented replacements for what JSON cannot
    carry."""
    options: dict[str, Any] = {
        "sort_keys": True,
        "separators": (",", ":"),
        "ensure_ascii": False,
        "allow_nan": False,
    }
    try:
        return json.dumps(entry, **options).encode("utf-8")
    except (ValueError, TypeError):
        return json.dumps(_sanitize(entry), **options).encode("utf-8")


class Colour(enum.Enum):
    RED = 1


class Kind(enum.StrEnum):
    READ = "read"


class Text(str):
    pass


@dataclasses.dataclass
class Point:
    x: int = 1


def entry_of_a_request() -> dict[str, Any]:
    entry = record(3, stage_ms={"token": 0.0123, "compartment": 0.0001, "scopes": 0.0}).to_dict()
    entry.update(kind="request", seq=3, prev="0" * 64)
    return entry


def test_an_audit_record_takes_the_fast_path_and_the_same_bytes() -> None:
    entry = entry_of_a_request()
    assert _orjson_writes_the_same(entry)
    assert canonical(entry) == recipe(entry)


@pytest.mark.parametrize(
    "value",
    [
        1e-5,  # orjson: 0.00001
        -3.2e-7,  # orjson: -3.2e-7
        9.999999999999999e-05,
        float("nan"),
        float("inf"),
        -float("inf"),
        "\ud800 a lone surrogate",
        2**64,  # beyond what orjson writes
        -(2**63) - 1,
        Colour.RED,  # orjson: 1; json: its str()
        Kind.READ,
        Text("x"),
        Point(),
        datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC),
        OrderedDict(b=1, a=2),
        {1: "an int key"},
        object(),
    ],
)
def test_what_orjson_would_write_otherwise_goes_the_json_way(value: Any) -> None:
    entry = {"kind": "x", "seq": 0, "value": value, "nested": [{"value": value}]}
    assert canonical(entry) == recipe(entry)


def test_values_both_write_alike_pass() -> None:
    entry = {
        "s": '\x00\x1f\x7f\u2028é😀"\\\n\t',
        "ints": [0, -1, 2**63 - 1, -(2**63), 2**64 - 1, True, False, None],
        "floats": [0.0, -0.0, 1e-4, 0.1 + 0.2, 1e16, 1e22, 1.7976931348623157e308, 5e-324],
        "keys": {"z": 1, "é": 2, "\uffff": 3, "😀": 4, "A": 5},
        "tuple": (1, "a"),
    }
    assert canonical(entry) == recipe(entry)


def test_floats_of_every_magnitude_are_written_as_the_recipe_writes_them() -> None:
    rng = random.Random(6)
    for exponent in range(-324, 309):
        for _ in range(20):
            value = rng.random() * 10.0**exponent
            for v in (value, -value):
                assert canonical({"v": v}) == recipe({"v": v}), v


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(st.dictionaries(st.text(max_size=6), json_values, max_size=6))
def test_any_json_entry_is_written_as_the_recipe_writes_it(entry: dict[str, Any]) -> None:
    assert canonical(entry) == recipe(entry)

"""AuditRecord: stable JSON, round trip, no credentials."""

from __future__ import annotations

import hashlib
import json

import pytest

from gateway.audit import AuditRecord, token_id
from gateway.audit.record import FIELD_NAMES
from tests.unit.gateway.audit.helpers import record


def test_to_json_has_every_field_in_declaration_order() -> None:
    data = json.loads(record(alerts=("volume-1",)).to_json())
    assert list(data) == list(FIELD_NAMES)
    assert list(data)[:4] == ["ts", "request_id", "method", "path"]
    assert data["patients"] == ["p1"]
    assert data["alerts"] == ["volume-1"]
    assert data["stage_ms"] == {"auth": 0.5, "upstream": 2.5}


def test_to_json_is_compact_and_keeps_non_ascii() -> None:
    text = record(reason="refusé").to_json()
    assert ", " not in text and '": ' not in text
    assert "refusé" in text


def test_from_dict_round_trips_and_ignores_chain_keys() -> None:
    original = record(patients=("a", "b"), alerts=("x-1",), control="C08", decision="monitor")
    line = {**original.to_dict(), "seq": 4, "prev": "0" * 64, "hash": "f" * 64, "kind": "request"}
    assert AuditRecord.from_dict(line) == original


def test_decision_is_checked() -> None:
    with pytest.raises(ValueError, match="decision"):
        record(decision="maybe")


def test_token_id_prefers_jti_and_never_contains_the_token() -> None:
    token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"
    assert token_id(token, "abc-123") == "abc-123"
    hashed = token_id(token)
    assert hashed == "sha256:" + hashlib.sha256(token.encode()).hexdigest()[:32]
    assert token not in hashed
    assert token_id(token) == hashed  # stable

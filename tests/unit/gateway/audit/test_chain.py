"""The hash chain: format, verification, and detection of every kind of tampering."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pytest

from gateway.audit import GENESIS, AuditLog, ChainError, canonical, verify_chain
from gateway.audit.chain import read_head, seal
from tests.unit.gateway.audit.helpers import record


def write_log(path: Path, n: int = 5, key: bytes | None = None) -> list[bytes]:
    log = AuditLog(path, key=key)
    for i in range(n):
        log.append(record(i))
    log.append_event("alert", {"id": "volume-1", "detector": "volume"}, ts=1_718_000_100.0)
    log.close()
    return path.read_bytes().splitlines(keepends=True)


def rewrite(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"".join(lines))


def test_line_format_is_canonical_json_with_hash_last(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    lines = write_log(path, 2)
    first = lines[0]
    assert first.endswith(b'"}\n')
    entry = json.loads(first)
    assert entry["seq"] == 0 and entry["prev"] == GENESIS and entry["kind"] == "request"
    assert list(entry)[-1] == "hash"
    # the documented recipe, spelled out: strip the hash, hash prev + the canonical bytes
    body = first[: -len(',"hash":""}\n') - 64] + b"}"
    without_hash = {k: v for k, v in entry.items() if k != "hash"}
    canonical_bytes = json.dumps(
        without_hash, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode()
    assert body == canonical_bytes == canonical(without_hash)
    assert entry["hash"] == hashlib.sha256(GENESIS.encode() + body).hexdigest()
    second = json.loads(lines[1])
    assert second["seq"] == 1 and second["prev"] == entry["hash"]


def test_events_share_the_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    lines = write_log(path, 3)
    event = json.loads(lines[-1])
    assert event["kind"] == "alert" and event["seq"] == 3
    assert event["event"] == {"id": "volume-1", "detector": "volume"}
    assert event["ts"] == 1_718_000_100.0


def test_good_chain_verifies(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    lines = write_log(path, 5)
    report = verify_chain(path)
    assert report.ok and report.records == 6 and report.first_bad_line is None
    assert report.head == json.loads(lines[-1])["hash"]
    assert verify_chain(path, expected_head=report.head).ok


def test_missing_or_empty_file_is_an_empty_chain(tmp_path: Path) -> None:
    assert verify_chain(tmp_path / "none.jsonl").records == 0
    (tmp_path / "empty.jsonl").write_bytes(b"")
    report = verify_chain(tmp_path / "empty.jsonl")
    assert report.ok and report.records == 0 and report.head == GENESIS


def test_edited_field_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    lines = write_log(path)
    lines[2] = lines[2].replace(b'"decision":"allow"', b'"decision":"deny"')
    rewrite(path, lines)
    report = verify_chain(path)
    assert (report.ok, report.first_bad_line, report.records) == (False, 3, 2)
    assert "edited" in report.reason


def test_deleted_line_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    lines = write_log(path)
    del lines[1]
    rewrite(path, lines)
    report = verify_chain(path)
    assert (report.ok, report.first_bad_line) == (False, 2)
    assert "seq is 2, expected 1" in report.reason


def test_deleted_first_line_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    lines = write_log(path)
    rewrite(path, lines[1:])
    assert verify_chain(path).first_bad_line == 1


def test_inserted_line_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    lines = write_log(path)
    forged, _ = seal(record(99).to_dict(), 2, json.loads(lines[1])["hash"])
    rewrite(path, [*lines[:2], forged, *lines[2:]])
    report = verify_chain(path)
    assert (report.ok, report.first_bad_line) == (False, 4)  # the forged line fits; the next not


def test_swapped_lines_are_detected(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    lines = write_log(path)
    lines[2], lines[3] = lines[3], lines[2]
    rewrite(path, lines)
    report = verify_chain(path)
    assert (report.ok, report.first_bad_line) == (False, 3)


def test_truncated_tail_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    lines = write_log(path)
    lines[-1] = lines[-1][:40]
    rewrite(path, lines)
    report = verify_chain(path)
    assert (report.ok, report.first_bad_line, report.records) == (False, len(lines), 5)
    assert "truncated" in report.reason


def test_removed_tail_is_detected_only_against_the_expected_head(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    lines = write_log(path)
    head = verify_chain(path).head
    rewrite(path, lines[:-2])
    assert verify_chain(path).ok
    report = verify_chain(path, expected_head=head)
    assert not report.ok and report.first_bad_line == len(lines) - 1


def test_a_recomputed_chain_still_fails_a_keyed_verification(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    key = b"k" * 32
    lines = write_log(path, key=key)
    assert verify_chain(path, key=key).ok
    assert not verify_chain(path).ok  # unkeyed recomputation does not match
    first = json.loads(lines[0])
    body = canonical({k: v for k, v in first.items() if k != "hash"})
    assert first["hash"] == hmac.new(key, GENESIS.encode() + body, hashlib.sha256).hexdigest()


def test_values_json_cannot_carry_still_give_one_verifiable_line(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    log.append(record(0, latency_ms=float("nan"), reason="bad \ud800 surrogate"))
    log.append_event("note", {"object": object(), "inf": float("inf")})
    log.close()
    lines = path.read_bytes().splitlines()
    assert len(lines) == 2
    first = json.loads(lines[0])
    assert first["latency_ms"] is None and first["reason"] == "bad \\ud800 surrogate"
    assert json.loads(lines[1])["event"]["inf"] is None
    assert verify_chain(path).ok


def test_read_head_refuses_an_incomplete_last_line(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    lines = write_log(path, 2)
    assert read_head(path) == (3, json.loads(lines[-1])["hash"])
    path.write_bytes(b"".join(lines)[:-10])
    with pytest.raises(ChainError, match="incomplete"):
        AuditLog(path)
    path.write_bytes(b"not json\n")
    with pytest.raises(ChainError, match="not a sealed"):
        read_head(path)


def test_read_head_reads_long_last_lines(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    log.append(record(0))
    log.append(record(1, reason="x" * 50_000))
    log.close()
    assert read_head(path) == (2, verify_chain(path).head)

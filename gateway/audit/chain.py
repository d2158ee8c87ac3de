"""The hash chain of the audit log: line format, sealing, verification, resuming.

One entry per line (JSONL, UTF-8, `\\n` after every line). Sealing an entry ``e`` as number
``seq`` after an entry whose hash is ``prev``:

1. ``e["seq"] = seq`` (0, 1, 2, ... with no gap) and ``e["prev"] = prev`` (`GENESIS`, 64 zeros,
   for entry 0);
2. ``body = canonical(e)``: ``json.dumps(e, sort_keys=True, separators=(",", ":"),
   ensure_ascii=False, allow_nan=False)`` encoded as UTF-8;
3. ``hash = sha256(prev.encode("ascii") + body).hexdigest()`` (lower-case hex) — or, when the log
   has a key, ``hmac.new(key, prev.encode("ascii") + body, sha256).hexdigest()``;
4. the line is ``body`` with ``,"hash":"<hash>"`` inserted before its final ``}``.

So the line is valid JSON whose keys are sorted except `hash`, which comes last; a verifier
strips the 75-byte suffix ``,"hash":"<64 hex>"}`` back to ``}`` and hashes the bytes as they are,
with no JSON re-serialisation (it also checks those bytes are canonical). Editing, deleting,
inserting or reordering lines breaks `seq`, `prev` or `hash`; a missing final newline is a
truncated last line. Removing lines from the *end* is only visible against a head recorded
elsewhere (`verify_chain(expected_head=...)`, e.g. the head written in a run's results); anyone
who can rewrite the whole file can recompute an unkeyed chain, which a key prevents.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import orjson

__all__ = [
    "GENESIS",
    "ChainError",
    "ChainReport",
    "canonical",
    "read_head",
    "seal",
    "verify_chain",
]

GENESIS: Final = "0" * 64
_SUFFIX_LEN: Final = len(',"hash":""}') + 64
_HASH_PREFIX: Final = b',"hash":"'
_HEX64: Final = re.compile(rb"[0-9a-f]{64}")


class ChainError(ValueError):
    """An existing audit log cannot be continued (its last line is incomplete or not a seal)."""


def canonical(entry: Mapping[str, Any]) -> bytes:
    """The canonical bytes of an entry (see the module docstring).

    Values JSON cannot carry exactly (NaN, infinities, lone surrogates, other types) are first
    replaced — non-finite floats by null, lone surrogates by their `\\ud800`-style escape
    text, unknown objects by their `str()` — so that every appended entry yields exactly one line.
    """
    if _orjson_writes_the_same(entry):
        try:
            return orjson.dumps(entry, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError:
            pass  # a lone surrogate, an integer beyond 64 bits: the json module's way below
    try:
        return _dumps(entry).encode("utf-8")
    except (ValueError, TypeError):
        return _dumps(_sanitize(entry)).encode("utf-8")


# orjson writes a float of magnitude below 1e-4 differently (`1e-5`, `0.00001`; json: `1e-05`)
_ORJSON_FLOOR: Final = 1e-4
_MAX_FLOAT: Final = 1.7976931348623157e308


def _orjson_writes_the_same(entry: Any) -> bool:
    """Would orjson (sorted keys) write exactly the bytes the json encoder writes? True when
    the entry holds nothing but dicts with str keys, lists, tuples, str, int, bool, None and
    floats that both write alike (finite, zero or of magnitude 1e-4 and above): the types both
    encode the same way, byte for byte. orjson is ten times faster on an audit record; anything
    else (subclasses, enums, dataclasses, tiny floats) keeps to the json module."""
    stack = [entry]
    while stack:
        value = stack.pop()
        kind = type(value)
        if kind is str or kind is int or kind is bool or value is None:
            continue
        if kind is float:
            magnitude = abs(value)
            if not (_ORJSON_FLOOR <= magnitude <= _MAX_FLOAT or value == 0.0):
                return False  # also NaN: no comparison holds
        elif kind is dict:
            for key in value:
                if type(key) is not str:
                    return False
            stack.extend(value.values())
        elif kind is list or kind is tuple:
            stack.extend(value)
        else:
            return False
    return True


# one encoder for every entry (`json.dumps` with these options builds a new one per call)
_ENCODER: Final = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def _dumps(value: Any) -> str:
    return _ENCODER.encode(value)


def _sanitize(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, bool) or value is None or isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {_sanitize(str(k)): _sanitize(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_sanitize(v) for v in value]
    return _sanitize(str(value))


def _digest(prev: str, body: bytes, key: bytes | None) -> str:
    data = prev.encode("ascii") + body
    if key is None:
        return hashlib.sha256(data).hexdigest()
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def seal(entry: dict[str, Any], seq: int, prev: str, key: bytes | None = None) -> tuple[bytes, str]:
    """Seal `entry` (adds `seq` and `prev` to it) and return (the line with its `\\n`, hash)."""
    entry["seq"] = seq
    entry["prev"] = prev
    body = canonical(entry)
    digest = _digest(prev, body, key)
    return body[:-1] + _HASH_PREFIX + digest.encode("ascii") + b'"}\n', digest


@dataclass(frozen=True, slots=True)
class ChainReport:
    """The result of `verify_chain`.

    `records` counts the lines that verified (all of them when `ok`); `first_bad_line` is
    1-based; `head` is the hash of the last good line (`GENESIS` when there is none).
    """

    ok: bool
    records: int
    first_bad_line: int | None
    reason: str
    head: str = GENESIS


def _check_line(raw: bytes, seq: int, prev: str, key: bytes | None) -> tuple[str | None, str]:
    """(problem or None, hash) for one line, without its newline."""
    if len(raw) <= _SUFFIX_LEN or not raw.endswith(b'"}'):
        return "not a sealed entry (no trailing hash)", prev
    split = len(raw) - _SUFFIX_LEN
    if raw[split : split + len(_HASH_PREFIX)] != _HASH_PREFIX:
        return "not a sealed entry (no trailing hash)", prev
    digest = raw[split + len(_HASH_PREFIX) : -2]
    if not _HEX64.fullmatch(digest):
        return "hash is not 64 lower-case hex digits", prev
    body = raw[:split] + b"}"
    try:
        entry = json.loads(body)
    except ValueError:
        return "not valid JSON", prev
    if not isinstance(entry, dict):
        return "not a JSON object", prev
    if entry.get("seq") != seq or isinstance(entry.get("seq"), bool):
        return (
            f"seq is {entry.get('seq')!r}, expected {seq} (line deleted, inserted or moved)",
            prev,
        )
    if entry.get("prev") != prev:
        return (
            "prev does not match the previous line's hash (line deleted, inserted or moved)",
            prev,
        )
    if _digest(prev, body, key) != digest.decode("ascii"):
        return "hash does not match the content (line edited)", prev
    if canonical(entry) != body:
        return "content is not in canonical form", prev
    return None, digest.decode("ascii")


def verify_chain(
    path: str | os.PathLike[str], *, key: bytes | None = None, expected_head: str | None = None
) -> ChainReport:
    """Verify a whole audit log file; stops at the first bad line.

    An empty or missing file is an empty, valid chain (unless `expected_head` says otherwise).
    """
    file = Path(path)
    if not file.exists():
        return _head_check(ChainReport(True, 0, None, "no audit log (empty chain)"), expected_head)
    seq, prev = 0, GENESIS
    with file.open("rb") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.endswith(b"\n"):
                return ChainReport(False, seq, number, "truncated last line (no newline)", prev)
            problem, digest = _check_line(line[:-1], seq, prev, key)
            if problem is not None:
                return ChainReport(False, seq, number, problem, prev)
            seq, prev = seq + 1, digest
    return _head_check(ChainReport(True, seq, None, f"{seq} entries verified", prev), expected_head)


def _head_check(report: ChainReport, expected_head: str | None) -> ChainReport:
    if expected_head is None or report.head == expected_head:
        return report
    return ChainReport(
        False,
        report.records,
        report.records + 1,
        "the chain ends before the expected head (lines removed from the end?)",
        report.head,
    )


def read_head(path: str | os.PathLike[str]) -> tuple[int, str]:
    """(next seq, hash of the last line) of an existing log, for appending to it; (0, GENESIS)
    for a missing or empty file. Reads only the tail. Raises `ChainError` when the last line is
    incomplete or not a sealed entry: verify the file and move it aside rather than guess."""
    file = Path(path)
    if not file.exists() or file.stat().st_size == 0:
        return 0, GENESIS
    last = _last_line(file)
    if not last.endswith(b"\n"):
        raise ChainError(
            f"{file}: the last line is incomplete (a crash during a write?); run verify_chain "
            "on it and move it aside before starting a new log"
        )
    try:
        entry = json.loads(last)
        seq, digest = entry["seq"], entry["hash"]
    except (ValueError, KeyError, TypeError):
        raise ChainError(f"{file}: the last line is not a sealed audit entry") from None
    if (
        not isinstance(seq, int)
        or not isinstance(digest, str)
        or not _HEX64.fullmatch(digest.encode("ascii", "replace"))
    ):
        raise ChainError(f"{file}: the last line has no valid seq/hash")
    return seq + 1, digest


def _last_line(file: Path, chunk: int = 8192) -> bytes:
    with file.open("rb") as fh:
        end = fh.seek(0, os.SEEK_END)
        pos, tail = end, b""
        while pos > 0:
            step = min(chunk, pos)
            pos -= step
            fh.seek(pos)
            tail = fh.read(step) + tail
            # the newline ending the last line does not count as its start
            cut = tail.rfind(b"\n", 0, len(tail) - 1)
            if cut >= 0:
                return tail[cut + 1 :]
        return tail

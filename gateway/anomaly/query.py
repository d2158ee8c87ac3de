"""Tolerant query-string reading for detectors: client-controlled input, never raises.

Unlike `gateway.classify.parse_query` (which refuses anything malformed so the gateway and
HAPI never disagree), detectors look at what was *logged*, including requests the gateway
refused: bad escapes are kept literally, invalid UTF-8 becomes U+FFFD, and only the first
`MAX_CHARS` characters and `MAX_PARAMS` parameters are read, so cost stays bounded.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Final
from urllib.parse import parse_qsl

__all__ = [
    "MAX_CHARS",
    "MAX_PARAMS",
    "int_value",
    "mentions",
    "split_name",
    "tolerant_params",
]

MAX_CHARS: Final = 4096
MAX_PARAMS: Final = 128


@lru_cache(maxsize=1024)
def tolerant_params(query: str) -> tuple[tuple[str, str], ...]:
    """Decoded `(name, value)` pairs, in order, repeats kept; empty names dropped.

    Cached (bounded), as several detectors read the same record's query."""
    if not query:
        return ()
    try:
        pairs = parse_qsl(query[:MAX_CHARS], keep_blank_values=True, errors="replace")
    except (ValueError, TypeError):
        return ()
    return tuple((name, value) for name, value in pairs[:MAX_PARAMS] if name)


def mentions(query: str, *names: str) -> bool:
    """Could the query hold one of `names`? A cheap test before parsing: a name may also
    arrive percent-encoded, so any `%` escape means "maybe"."""
    return "%" in query or any(name in query for name in names)


def split_name(name: str) -> tuple[str, str]:
    """`name:modifier` -> (`name`, `modifier`); a plain name has an empty modifier."""
    base, _, modifier = name.partition(":")
    return base.strip(), modifier.strip()


def int_value(text: str, limit: int = 10**9) -> int | None:
    """A small non-negative decimal integer, or None (never raises on odd input)."""
    text = text.strip()
    if not text or len(text) > 10 or not text.isascii() or not text.isdigit():
        return None
    value = int(text)
    return value if value <= limit else None

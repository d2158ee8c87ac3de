"""`paging_walk`: a token paging through one search far beyond what a task needs.

Two shapes are recognised, keyed per token (or client when there is no token id):

- HAPI paging links: `GET [base]?_getpages=<id>&_getpagesoffset=N&_count=...` — one search is
  one `_getpages` id, a page is a distinct `_getpagesoffset`;
- offset paging of a search: the same path and parameters with a varying `_offset` (often with
  a large `_count`) — a page is a distinct `_offset`.

A walk alerts once, when it passes `max_pages` distinct pages or `max_results` results (the
record's `result_count`, else the page's `_count`). A walk idle for `idle_s` is forgotten.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

from gateway.anomaly.base import Alert, AlertFactory, Severity, client_key, recent_ids
from gateway.anomaly.config import require
from gateway.anomaly.query import int_value, mentions, tolerant_params
from gateway.anomaly.windows import LruMap
from gateway.audit.record import AuditRecord

__all__ = ["PagingConfig", "PagingWalkDetector"]

_PAGING: Final = frozenset({"_offset", "_count", "_getpagesoffset", "_format", "_pretty"})
_SEARCHES: Final = frozenset({"search-type", "search-system", "search-compartment"})
_MAX_KEY: Final = 512


@dataclass(frozen=True, slots=True)
class PagingConfig:
    max_pages: int = 20
    max_results: int = 5000
    idle_s: float = 3600.0
    max_keys: int = 10_000

    def __post_init__(self) -> None:
        for name in ("max_pages", "max_results", "max_keys"):
            value = getattr(self, name)
            require(value >= 1, name, f"must be >= 1, got {value}")
        require(self.idle_s > 0, "idle_s", f"must be > 0, got {self.idle_s}")


class _Walk:
    __slots__ = ("alerted", "first_ts", "last_ts", "pages", "recent", "results")

    def __init__(self, ts: float) -> None:
        self.pages: set[str] = set()
        self.results = 0
        self.first_ts = ts
        self.last_ts = ts
        self.alerted = False
        self.recent: deque[str] = recent_ids()


def _page(record: AuditRecord) -> tuple[str, str, int] | None:
    """(search key, page id, page size) when the record is a page of a search, else None."""
    if not mentions(record.query, "_getpages", "_offset", "_count"):
        return None
    if len(record.query) + len(record.path) <= _MAX_REMEMBERED:
        return _remembered_page(record.query, record.interaction, record.path)
    return _page_of(record.query, record.interaction, record.path)


# a client repeats the same searches: the reading of a short query is remembered, bounded
_MAX_REMEMBERED: Final = 2048


@lru_cache(maxsize=1024)
def _remembered_page(query: str, interaction: str, path: str) -> tuple[str, str, int] | None:
    return _page_of(query, interaction, path)


def _page_of(query: str, interaction: str, path: str) -> tuple[str, str, int] | None:
    params = tolerant_params(query)
    found = {name: value for name, value in reversed(params) if name in _PAGING}
    getpages = next((value for name, value in params if name == "_getpages"), None)
    count = int_value(found.get("_count", "")) or 0
    if getpages:
        return f"_getpages={getpages[:128]}", found.get("_getpagesoffset", "0")[:32], count
    if interaction not in _SEARCHES or not ("_offset" in found or "_count" in found):
        return None
    rest = "&".join(sorted(f"{n}={v}" for n, v in params if n not in _PAGING))
    return f"{path}?{rest}"[:_MAX_KEY], found.get("_offset", "0")[:32], count


class PagingWalkDetector:
    """Distinct pages (and results) per token per search, alerting once per walk."""

    name = "paging_walk"

    def __init__(self, config: PagingConfig | None = None) -> None:
        self.config = config or PagingConfig()
        self._walks: LruMap[tuple[str, str], _Walk] = LruMap(self.config.max_keys)
        self._alert = AlertFactory(self.name)

    def observe(self, record: AuditRecord) -> list[Alert]:
        page = _page(record)
        if page is None:
            return []
        search, offset, size = page
        config = self.config
        self._forget_idle(record.ts - config.idle_s)
        who = record.token_id or client_key(record)
        walk = self._walks.touch((who, search), lambda: _Walk(record.ts))
        walk.last_ts = max(walk.last_ts, record.ts)
        if offset not in walk.pages and len(walk.pages) <= config.max_pages:
            walk.pages.add(offset)
            walk.results += size if record.result_count is None else max(record.result_count, 0)
            walk.recent.append(record.request_id)
        pages, results = len(walk.pages), walk.results
        if walk.alerted or (pages <= config.max_pages and results <= config.max_results):
            return []
        walk.alerted = True
        message = (
            f"{who} walked {pages} pages ({results} results) of one search in "
            f"{record.ts - walk.first_ts:.0f} s (thresholds {config.max_pages} pages, "
            f"{config.max_results} results)"
        )
        evidence = {
            "key": who,
            "search": search,
            "pages": pages,
            "results": results,
            "max_pages": config.max_pages,
            "max_results": config.max_results,
            "duration_s": record.ts - walk.first_ts,
            "request_ids": list(walk.recent),
        }
        severity: Severity = "high" if results > config.max_results else "medium"
        return [self._alert(record, severity, message, evidence)]

    def _forget_idle(self, horizon: float) -> None:
        walks = self._walks
        while (oldest := walks.oldest()) is not None and oldest[1].last_ts < horizon:
            walks.pop_oldest()

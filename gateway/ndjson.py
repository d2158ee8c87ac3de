"""Bulk-export output (NDJSON, one resource per line) checked line by line as it streams.

A bulk `$export` job is made by the server, for whatever the kick-off asked: a system-level
export holds every tenant's data. C10 binds a kick-off that names its types to the tenant
(`export_narrowed` in `gateway/stages/tenant.py`), but not one without `_type` or with the
client's own `_typeFilter`s (OR-ed with any the gateway would add), so every download is checked
for what the job hands out: each line of an output file is a resource, read once, put to the
request's response checks (C10's `SameTenant` above all) and counted for the audit record. A
line an enforced check refuses is withheld from the stream (a line that is not a JSON object
cannot be checked and is withheld too); the client gets the rest, and the audit record says how
many were withheld and why (decision `filter`). A monitored check's refusal is recorded (the
first, once per file, as `check_resources` does once per answer) and the line goes out.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable

from gateway.context import Finding, RequestContext
from gateway.formats import is_ndjson
from gateway.returned import first_refusal
from gateway.screen import line_resources

__all__ = ["NdjsonChecker", "is_ndjson"]


class NdjsonChecker:
    """Feed it the body's chunks as they come (`feed`, then `end`); it returns the bytes that
    may go out, and keeps the request's audit facts (patients, result count, findings)."""

    __slots__ = ("_inflate", "_monitored", "_rest", "ctx", "first_refusal", "kept", "withheld")

    def __init__(self, ctx: RequestContext, encoding: bytes | None = None) -> None:
        self.ctx = ctx
        self._rest = b""
        self._inflate = _inflater(encoding)
        self.kept = 0
        self.withheld = 0
        self.first_refusal: Finding | None = None
        self._monitored = False  # a monitored check's refusal was recorded

    def feed(self, chunk: bytes) -> bytes:
        if self._inflate is not None:
            chunk = self._inflate.decompress(chunk)
        data = self._rest + chunk if self._rest else chunk
        lines = data.split(b"\n")
        self._rest = lines.pop()
        return self._pass(lines)

    def end(self) -> bytes:
        """What is left once the body has ended; the findings go on the request."""
        if self._inflate is not None:
            self._rest += self._inflate.flush()
        tail = self._pass([self._rest]) if self._rest.strip() else self._rest
        self._rest = b""
        ctx = self.ctx
        ctx.result_count = self.kept
        if self.first_refusal is not None:
            refused = self.first_refusal
            ctx.findings.append(
                Finding(
                    refused.control,
                    "filter",
                    refused.status,
                    f"withheld {self.withheld} of {self.kept + self.withheld} resources of this "
                    f"export file; the first: {refused.reason}",
                )
            )
        return tail

    def _pass(self, lines: Iterable[bytes]) -> bytes:
        ctx = self.ctx
        out: list[bytes] = []
        for line in lines:
            if not line.strip():
                out.append(line)
                continue
            found = line_resources(line)  # a line holding a Bundle: each of its resources
            denial = first_refusal(ctx.resource_checks, found)
            if denial is not None:
                self.withheld += 1
                if self.first_refusal is None:
                    self.first_refusal = Finding(denial.control, "filter", 403, denial.reason)
                continue
            if ctx.monitor_checks and not self._monitored:
                watched = first_refusal(ctx.monitor_checks, found)
                if watched is not None:
                    self._monitored = True
                    ctx.findings.append(
                        Finding(watched.control, "monitor", watched.status, watched.reason)
                    )
            self.kept += 1
            for returned in found:
                ctx.patients.update(returned.compartment_patients)
            out.append(line)
        return b"".join(line + b"\n" for line in out)


def _inflater(encoding: bytes | None) -> zlib._Decompress | None:
    kind = (encoding or b"identity").strip().lower()
    if kind in (b"gzip", b"x-gzip"):
        return zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)
    if kind == b"deflate":
        return zlib.decompressobj()
    if kind == b"identity":
        return None
    raise ValueError(f"cannot read a {kind.decode('latin-1')} body")

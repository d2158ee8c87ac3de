"""The fast lane: a compiled front (`gateway/fastlane/`, Rust) that serves the plainest requests
itself and hands every other request to this gateway unchanged.

With `python -m gateway --fast-lane`, the compiled front listens on the gateway's port and this
gateway on a loopback port of its own. The front serves a request itself only when it can apply
every check exactly as the pipeline would: a `GET` read by id or a search with plain parameters,
a JSON answer, a token this gateway vetted. Anything else, and anything it is unsure of on the
way (a header it does not know, an answer that is not a plain match, a resource a check
refuses), goes to this gateway, which answers as it always does.

This module is the gateway's side of that contract:

- `LaneGrants` vets a token for the front. It runs the stage pipeline itself on a read and a
  search of each resource type the token's scopes may read, and tells the front which of them
  pass with no finding, which checks their answers need (C05 type, C08 compartment, C10 tenant)
  and what the pipeline adds to a search (the tenant's `_tag`, the patient's narrowing). The
  grant lasts until the token expires or its revocation check (C09) is due again.
- `lane_config` is what the front is told at start: the R4 compartment tables, the formats the
  gateway answers, where HAPI and this gateway are.
- `FastLane` starts and stops the front, and turns each line it writes (one per request it
  served) into the same audit record the pipeline would have made, so the C06 log, its hash
  chain and the anomaly detectors see every request whichever side served it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import hmac
import json
import logging
import os
import secrets
import signal
import tempfile
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlencode

import orjson

from gateway.audit import AuditRecord
from gateway.classify import ClassifyError, classify
from gateway.context import RequestContext, ResourceCheck
from gateway.controls import Mode
from gateway.formats import negotiate
from gateway.pipeline import Pipeline
from gateway.policy import Policy
from gateway.stages.compartment import InCompartment
from gateway.stages.scopes import ReadableType
from gateway.stages.tenant import TENANT_TAG_SYSTEM, SameTenant
from gateway.token_verifier import TokenVerifier, VerifiedToken
from labcore.errors import LabError
from labcore.patient_compartment import (
    in_compartment_types,
    not_in_compartment_types,
    patient_element_paths,
    patient_search_params,
)

log = logging.getLogger("gateway")

BINARY_ENV: Final = "FHIRLAB_FAST_LANE_BIN"
DEFAULT_BINARY: Final = Path(__file__).parent / "fastlane/target/release/fhirlab-fastlane"
SECRET_HEADER: Final = "x-fastlane-secret"
GRANT_PATH: Final = "/_fastlane/grant"
# Types the front never serves: envelopes and content no check reads (the gateway answers them).
_NOT_SERVED: Final = frozenset(
    {"Binary", "Bundle", "OperationOutcome", "Parameters", "CapabilityStatement"}
)
# What the front knows how to check of a returned resource, by the pipeline's check objects.
_LANE_CHECKS: Final = {ReadableType: "C05", SameTenant: "C10", InCompartment: "C08"}
# The longest a grant lives without the token being vetted again (C09 off, a long token).
MAX_GRANT_S: Final = 300.0
# A token the front may not serve is asked about again after this long.
INELIGIBLE_S: Final = 60.0
_PROBE_ID: Final = "fast-lane-probe"
# The Accept values the front answers itself (any other goes to the gateway).
_ACCEPTS: Final = (
    "",
    "*/*",
    "application/fhir+json",
    "application/json",
    "application/fhir+json;charset=utf-8",
    "application/fhir+json; charset=utf-8",
    "application/json, */*",
    "application/fhir+json, */*",
    "application/json, text/plain, */*",
)
_MAX_GRANTS: Final = 65_536
START_TIMEOUT_S: Final = 10.0
# The front's event lines are read this many bytes at a time (about 50 lines).
_EVENTS_PIECE: Final = 1 << 14
# The records of what the front served carry its time under this name, as a stage's would be.
FRONT_STAGE: Final = "fast-lane"


def lane_binary() -> Path:
    """The front's executable (`make fast-lane` builds it), or a clear error."""
    path = Path(os.environ.get(BINARY_ENV) or DEFAULT_BINARY)
    if not path.is_file() or not os.access(path, os.X_OK):
        raise LabError(
            f"the fast lane's executable {path} is missing",
            "build it with `make fast-lane` (cargo, from crates.io), or run without --fast-lane",
        )
    return path


def lane_config(
    listen: str, gateway: str, upstream: str, base_path: str, secret: str, timeout_s: float
) -> dict[str, Any]:
    """What the front is told at start: where everything is and the tables its checks read."""
    accept: dict[str, str] = {}
    for value in _ACCEPTS:
        answer = negotiate((), value.encode() if value else None)
        accept[value] = answer.media_type.decode("latin-1")
    json_answer = negotiate((), None)
    return {
        "listen": listen,
        "gateway": gateway,
        "upstream": upstream.rstrip("/"),
        "base_path": base_path,
        "secret": secret,
        "threads": 1,
        "upstream_timeout_s": timeout_s,
        "compartment_paths": {
            rtype: [path.split(".") for path in patient_element_paths(rtype)]
            for rtype in sorted(in_compartment_types())
        },
        "compartment_params": {
            rtype: list(patient_search_params(rtype)) for rtype in sorted(in_compartment_types())
        },
        "never_in_compartment": sorted(not_in_compartment_types()),
        "json_media_types": ["application/fhir+json", "application/json", "application/json+fhir"],
        "accept": accept,
        "upstream_accept": json_answer.upstream_accept.decode("latin-1"),
        "tenant_tag_system": TENANT_TAG_SYSTEM,
    }


@dataclass(frozen=True, slots=True)
class _Probe:
    """What the pipeline did with one synthetic request: None if it did not pass cleanly."""

    checks: frozenset[str]
    upstream_params: tuple[tuple[str, str], ...]


class LaneGrants:
    """Vets tokens for the front (see the module's docstring) and remembers, per grant, the
    token it stands for: the audit record of a request the front served names its client."""

    def __init__(
        self,
        pipeline: Pipeline,
        verifier: TokenVerifier,
        policy: Policy,
        base_path: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.pipeline = pipeline
        self.verifier = verifier
        self.base_path = base_path
        self.clock = clock
        self.why_not = _why_not(policy)
        self.revocation = policy.mode("C09") is Mode.ENFORCE
        self.max_count = policy.operations.max_count if policy.mode("C12") is Mode.ENFORCE else None
        self._tokens: OrderedDict[str, VerifiedToken] = OrderedDict()
        self._next = 0

    def token_of(self, grant: str) -> VerifiedToken | None:
        return self._tokens.get(grant)

    async def grant(self, bearer: str) -> dict[str, Any]:
        now = self.clock()
        ineligible = {"eligible": False, "valid_until": now + INELIGIBLE_S}
        if self.why_not is not None or not bearer:
            return ineligible
        token = await self._verified(bearer)
        if token is None:
            return ineligible
        reads: list[str] = []
        searches: dict[str, dict[str, list[list[str]]]] = {}
        checks: set[str] = set()
        for rtype in _candidates(token):
            read = await self._probe(bearer, token, rtype)
            if read is not None and not read.upstream_params:
                reads.append(rtype)
                checks |= read.checks
            search = await self._search(bearer, rtype, token)
            if search is not None:
                searches[rtype], search_checks = search
                checks |= search_checks
        if not reads and not searches:
            return ineligible
        self._next += 1
        grant = f"g{self._next}"
        self._tokens[grant] = token
        if len(self._tokens) > _MAX_GRANTS:
            self._tokens.popitem(last=False)
        return {
            "eligible": True,
            "grant": grant,
            "valid_until": self._valid_until(bearer, token, now),
            "patient": token.patient,
            "tenant": token.tenant,
            "checks": sorted(checks),
            "read": reads,
            "search": searches,
            "max_count": self.max_count,
        }

    def _valid_until(self, bearer: str, token: VerifiedToken, now: float) -> float:
        until = min(float(token.expires_at), now + MAX_GRANT_S)
        if self.revocation:  # not past the point where the gateway would ask the issuer again
            active_until = self.verifier.active_until(bearer)
            until = min(until, active_until if active_until is not None else now)
        return until

    async def _verified(self, bearer: str) -> VerifiedToken | None:
        try:
            return await self.verifier.verify(bearer)
        except Exception:  # refused or unverifiable: the gateway answers this token itself
            return None

    async def _search(
        self, bearer: str, rtype: str, token: VerifiedToken
    ) -> tuple[dict[str, list[list[str]]], frozenset[str]] | None:
        """A plain search of `rtype`: what the pipeline appends to it, unpinned and pinned to
        the patient in context (the front pins nothing else: other values go to the gateway)."""
        if rtype == "Patient" and token.patient:
            return None  # Patient searches are pinned by `_id`: left to the gateway
        narrow = await self._probe(bearer, token, rtype, query="")
        if narrow is None:
            return None
        pinned_params = narrow.upstream_params
        params = patient_search_params(rtype)
        if token.patient and params:
            pin = (
                ("patient", token.patient)
                if "patient" in params
                else (
                    params[0],
                    f"Patient/{token.patient}",
                )
            )
            pinned = await self._probe(bearer, token, rtype, query=urlencode([pin]))
            if pinned is None or pinned.upstream_params[:1] not in ((pin,), ()):
                return None
            pinned_params = pinned.upstream_params[1:]
        return (
            {
                "narrow": [list(p) for p in narrow.upstream_params],
                "pinned": [list(p) for p in pinned_params],
            },
            narrow.checks,
        )

    async def _probe(
        self, bearer: str, token: VerifiedToken, rtype: str, query: str | None = None
    ) -> _Probe | None:
        """Run the pipeline on a read of `rtype` (the patient's own id for a Patient, any
        other id for the rest: a read's checks do not depend on it) or, with `query`, on
        `GET rtype?query`; None unless it passed with no finding and only checks the front
        knows."""
        if query is None:
            rid = token.patient if rtype == "Patient" and token.patient else _PROBE_ID
            ctx = self._context(bearer, f"{self.base_path}/{rtype}/{rid}", "")
        else:
            ctx = self._context(bearer, f"{self.base_path}/{rtype}", query)
        if ctx is None:
            return None
        denial = await self.pipeline.run(ctx)
        if denial is not None or ctx.findings or ctx.monitor_checks or ctx.upstream_path:
            return None
        if ctx.text_summary or ctx.if_none_exist:
            return None
        controls = _lane_checks(ctx.resource_checks, ctx.token)
        if controls is None:
            return None
        return _Probe(controls, tuple(ctx.upstream_params or ()))

    def _context(self, bearer: str, path: str, query: str) -> RequestContext | None:
        ctx = RequestContext(
            request_id="fast-lane-grant",
            method="GET",
            raw_path=path,
            raw_query=query,
            bearer=bearer,
        )
        try:
            ctx.fhir = classify("GET", path, query, self.base_path)
        except ClassifyError:
            return None
        return ctx


def _why_not(policy: Policy) -> str | None:
    """Why this policy keeps every request off the front, or None."""
    if not policy.token.enabled:
        return "tokens are not checked"
    if policy.rate_limit.enabled:
        return "the rate limit counts every request in the gateway"
    monitored = sorted(c for c, m in policy.controls.items() if m is Mode.MONITOR)
    if monitored:
        return f"{', '.join(monitored)} in monitor mode record findings the front cannot"
    return None


def _candidates(token: VerifiedToken) -> list[str]:
    """The types worth probing: those the token's scopes let it read without conditions."""
    found = []
    for rtype in sorted((in_compartment_types() | not_in_compartment_types()) - _NOT_SERVED):
        decision = token.scopes.read_decision(rtype)
        if decision.allowed and not decision.conditional and not decision.needs_result_filter:
            found.append(rtype)
    return found


def _lane_checks(
    resource_checks: list[tuple[str, ResourceCheck]], token: VerifiedToken | None
) -> frozenset[str] | None:
    """The front's names for the checks of each returned resource; None if one of them is a
    check the front does not know, or is about another patient or tenant than the token's."""
    if token is None:
        return None
    found = set()
    for _control, check in resource_checks:
        name = _LANE_CHECKS.get(type(check))
        if name is None:
            return None
        if isinstance(check, SameTenant) and check.tenant != token.tenant:
            return None
        if isinstance(check, InCompartment) and check.patient != token.patient:
            return None
        found.add(name)
    return frozenset(found)


def to_record(event: dict[str, Any], token: VerifiedToken | None) -> AuditRecord:
    """The audit record of a request the front served (what `gateway/recorder.py` would have
    written for it). The front writes every field with its type (gateway/fastlane/src/events.rs),
    the patients sorted and unique: nothing is converted here, a missing field is a KeyError."""
    status = event["status"]
    latency_ms = event["latency_ms"]
    if token is None:  # its grant was forgotten (the oldest of _MAX_GRANTS)
        client_id = subject = tenant = token_id = patient = None
    else:
        client_id, subject, tenant = token.client_id, token.subject, token.tenant
        token_id, patient = token.token_id, token.patient
    return AuditRecord(
        ts=event["ts"],
        request_id=event["request_id"],
        method=event["method"],
        path=event["path"],
        query=event["query"],
        client_id=client_id,
        subject=subject,
        tenant=tenant,
        token_id=token_id,
        patient_context=patient,
        patients=tuple(event["patients"]),
        interaction=event["interaction"],
        resource_type=event["resource_type"],
        decision="allow" if status < 500 else "deny",
        status=status,
        result_count=event["result_count"],
        latency_ms=latency_ms,
        stage_ms={FRONT_STAGE: latency_ms},
    )


class FastLane:
    """The front as a child process of the gateway: started before the gateway serves, stopped
    after it stops, its event lines turned into audit records until its last one."""

    def __init__(
        self,
        binary: Path,
        config: dict[str, Any],
        grants: LaneGrants,
        record: Callable[[AuditRecord], None] | None,
    ) -> None:
        self.binary = binary
        self.config = config
        self.grants = grants
        self.record = record
        self._proc: asyncio.subprocess.Process | None = None
        self._pump: asyncio.Task[None] | None = None
        self._config_file: Path | None = None

    @property
    def secret(self) -> str:
        return str(self.config["secret"])

    async def start(self) -> None:
        fd, name = tempfile.mkstemp(prefix="fhirlab-fastlane-", suffix=".json")
        with os.fdopen(fd, "w") as out:
            json.dump(self.config, out)
        self._config_file = Path(name)
        self._proc = await asyncio.create_subprocess_exec(
            str(self.binary),
            name,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            preexec_fn=_die_with_parent,
        )
        self._pump = asyncio.create_task(self._read_events())
        await self._listening(str(self.config["listen"]))

    async def _listening(self, address: str, timeout_s: float = START_TIMEOUT_S) -> None:
        """Wait until the front accepts connections; a clear error if it exits first."""
        host, _, port = address.rpartition(":")
        deadline = time.monotonic() + timeout_s
        while True:
            assert self._proc is not None
            if self._proc.returncode is not None:
                raise LabError(
                    f"the fast lane exited at start (code {self._proc.returncode})",
                    f"see its message above; is {address} free?",
                )
            try:
                _, writer = await asyncio.open_connection(host, int(port))
            except OSError:
                if time.monotonic() > deadline:
                    raise LabError(
                        f"the fast lane did not listen on {address} within {timeout_s:.0f} s"
                    ) from None
                await asyncio.sleep(0.05)
                continue
            writer.close()
            return

    async def stop(self) -> None:
        proc = self._proc
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), timeout=15)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        if self._pump is not None:
            await self._pump  # every line the front wrote, to its last
        if self._config_file is not None:
            self._config_file.unlink(missing_ok=True)

    async def _read_events(self) -> None:
        """Turn the front's lines into records as they come. The front hands them over in
        batches (`gateway/fastlane/src/events.rs`); a batch is taken a piece at a time, the
        event loop free between pieces, so requests this gateway serves itself wait for at
        most one piece's records (about 50), not for a whole batch's."""
        assert self._proc is not None and self._proc.stdout is not None
        stream = self._proc.stdout
        rest = b""
        while True:
            chunk = await stream.read(_EVENTS_PIECE)
            if not chunk:
                break
            lines = (rest + chunk).split(b"\n")
            rest = lines.pop()
            for line in lines:
                self._event(line)
            await asyncio.sleep(0)
        if rest.strip():
            self._event(rest)

    def _event(self, line: bytes) -> None:
        if not line.strip():
            return
        try:
            event = orjson.loads(line)
            record = to_record(event, self.grants.token_of(event["grant"]))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            log.error("the fast lane wrote a line that is not an event: %r", line[:200])
            return
        if self.record is not None:
            self.record(record)


def new_secret() -> str:
    return secrets.token_hex(32)


def secret_matches(given: str | None, secret: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), secret.encode())


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the gateway dies, however it dies (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG

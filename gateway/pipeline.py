"""The stage pipeline: built once from the policy, run per request (and per batch entry).

Each stage contributes (control, check) pairs; the policy gives every control a mode. A check of
an `off` control is skipped; a refusal under `enforce` stops the request. Under `monitor` a check
only records: its refusal is a finding, its response checks record instead of withholding, and
any rewrite of the request it made is undone (`_monitor`). The time spent in each stage is
recorded, so the cost of every control can be read off the audit log and compared in one run.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode, urlsplit

from gateway.bundle_refs import local_identities, resolve_local
from gateway.classify import ClassifyError, Interaction, classify
from gateway.context import Finding, RequestContext
from gateway.controls import Mode
from gateway.denial import Denial, bad_request
from gateway.stages import Check, Stage

ModeOf = Callable[[str | None], Mode]
# Checks that concern the request as a whole, not each entry of a batch.
_WHOLE_REQUEST_ONLY = frozenset({"token", "rate_limit"})


class Pipeline:
    def __init__(self, stages: list[Stage], mode_of: ModeOf, base_path: str = "/fhir") -> None:
        self.base_path = base_path
        # the policy is fixed for the life of the gateway: resolve each check's mode once and
        # drop the checks that are off, so no request pays for them
        self.checks: list[tuple[str, str | None, Check, Mode]] = [
            (stage.name, control, check, mode)
            for stage in stages
            for control, check in stage.checks()
            if (mode := mode_of(control)) is not Mode.OFF
        ]
        # the same checks grouped by stage (timed once per stage, not per check), for the whole
        # request and for a batch entry
        self._by_stage = _group(self.checks)
        self._by_stage_entry = _group([c for c in self.checks if c[1] not in _WHOLE_REQUEST_ONLY])

    async def run(self, ctx: RequestContext) -> Denial | None:
        """Run every active check; the enforced refusal, if any (findings are recorded)."""
        denial = await self._run_checks(ctx, entry=False)
        if denial is None and ctx.fhir is not None and ctx.fhir.interaction is Interaction.BATCH:
            denial = await self._run_entries(ctx)
        return denial

    async def _run_checks(self, ctx: RequestContext, entry: bool) -> Denial | None:
        stage_ms = ctx.stage_ms
        clock = time.perf_counter
        for stage, checks in self._by_stage_entry if entry else self._by_stage:
            t0 = clock()
            try:
                for control, check, mode in checks:
                    if mode is Mode.MONITOR:
                        await _monitor(ctx, control, check)
                        continue
                    try:
                        await check(ctx)
                    except Denial as denial:
                        ctx.findings.append(
                            Finding(denial.control or control, "deny", denial.status, denial.reason)
                        )
                        return denial
            finally:
                stage_ms[stage] = stage_ms.get(stage, 0.0) + (clock() - t0) * 1000
        return None

    async def _run_entries(self, ctx: RequestContext) -> Denial | None:
        """Batch/transaction: every entry is checked as the request it stands for."""
        try:
            bundle = ctx.json_body()  # parsed once (C10 may have stamped it already)
        except ValueError:
            return _enforce(ctx, bad_request("the batch/transaction body is not JSON"))
        if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
            return _enforce(ctx, bad_request("a POST to the base must be a Bundle"))
        entries = bundle.get("entry") or []
        if not isinstance(entries, list):
            return _enforce(ctx, bad_request("Bundle.entry must be a list"))
        rewritten = False
        identities = local_identities(entries)  # urn:uuid: full URLs of entries written by id
        # equal checks of several entries count once
        seen_checks = set(ctx.resource_checks) | set(ctx.monitor_checks)
        for index, entry in enumerate(entries):
            request = entry.get("request") if isinstance(entry, dict) else None
            if not isinstance(request, dict):
                return _enforce(ctx, bad_request(f"entry {index} has no request"))
            method, url = str(request.get("method", "")), str(request.get("url", ""))
            path, _, query = url.partition("?")
            if urlsplit(url).scheme or path.startswith("/"):
                return _enforce(ctx, bad_request(f"entry {index}: url must be relative"))
            try:
                fhir = classify(method, f"{self.base_path}/{path}", query, self.base_path)
            except ClassifyError as exc:
                return _enforce(ctx, bad_request(f"entry {index}: {exc}"))
            if fhir.interaction is Interaction.BATCH:
                return _enforce(ctx, bad_request(f"entry {index}: nested batch"))
            if fhir.is_page:  # HAPI fails on it (500): pages are read one request at a time
                return _enforce(ctx, bad_request(f"entry {index}: a search page is not an entry"))
            if_none_exist = request.get("ifNoneExist")
            child = RequestContext(
                request_id=f"{ctx.request_id}.{index}",
                method=method,
                raw_path=path,
                raw_query=query,
                fhir=fhir,
                token=ctx.token,
                client_class=ctx.client_class,
                if_none_exist=if_none_exist if isinstance(if_none_exist, str) else None,
            )
            resource = entry.get("resource")
            if isinstance(resource, dict):
                child.body = entry_body(fhir.interaction, resolve_local(resource, identities))
            denial = await self._run_checks(child, entry=True)
            ctx.findings.extend(
                Finding(f.control, f.action, f.status, f"entry {index}: {f.reason}")
                for f in child.findings
            )
            for name, ms in child.stage_ms.items():
                ctx.stage_ms[name] = ctx.stage_ms.get(name, 0.0) + ms
            for pair in child.resource_checks:
                if pair not in seen_checks:
                    seen_checks.add(pair)
                    ctx.resource_checks.append(pair)
            for pair in child.monitor_checks:
                if pair not in seen_checks:
                    seen_checks.add(pair)
                    ctx.monitor_checks.append(pair)
            if denial is not None:
                return Denial(
                    denial.status,
                    f"entry {index} ({method} {path}): {denial.reason}",
                    denial.control,
                    denial.bearer_error,
                )
            if child.upstream_params is not None:
                request["url"] = f"{path}?{urlencode(child.upstream_params)}"
                rewritten = True
            if isinstance(if_none_exist, str) and child.if_none_exist != if_none_exist:
                request["ifNoneExist"] = child.if_none_exist
                rewritten = True
        if rewritten:
            ctx.set_json_body(bundle)
        return None


def entry_body(interaction: Interaction, resource: dict[str, Any]) -> bytes:
    """The body a batch entry stands for. A patch entry carries its patch as a resource: a
    FHIRPath Patch `Parameters` as it is, a JSON Patch as a `Binary` whose `data` is the
    base64 of the patch document (what the checks of a patch then read); a Binary that cannot
    be decoded is passed on as it is, and the checks refuse it as unreadable."""
    if interaction is Interaction.PATCH and resource.get("resourceType") == "Binary":
        data = resource.get("data")
        if isinstance(data, str):
            try:
                return base64.b64decode(data, validate=True)
            except ValueError:
                pass
    return json.dumps(resource).encode()


def _group(
    checks: list[tuple[str, str | None, Check, Mode]],
) -> list[tuple[str, list[tuple[str | None, Check, Mode]]]]:
    """Consecutive checks of one stage together, in order."""
    grouped: list[tuple[str, list[tuple[str | None, Check, Mode]]]] = []
    for stage, control, check, mode in checks:
        if not grouped or grouped[-1][0] != stage:
            grouped.append((stage, []))
        grouped[-1][1].append((control, check, mode))
    return grouped


async def _monitor(ctx: RequestContext, control: str | None, check: Check) -> None:
    """A check in monitor mode looks and records; it changes nothing. A refusal becomes a
    `monitor` finding; the response checks it adds record what they would withhold instead of
    withholding it; and whatever it rewrote of the request (a search narrowed to the patient or
    the tenant, a stamped body, a capped `_count`) is undone, so the request goes upstream as it
    would with the control off."""
    request = ctx.upstream_request()
    checks_before = len(ctx.resource_checks)
    try:
        await check(ctx)
    except Denial as denial:
        ctx.findings.append(
            Finding(denial.control or control, "monitor", denial.status, denial.reason)
        )
    finally:
        if len(ctx.resource_checks) > checks_before:
            ctx.monitor_checks.extend(ctx.resource_checks[checks_before:])
            del ctx.resource_checks[checks_before:]
        ctx.restore_upstream_request(request)


def _enforce(ctx: RequestContext, denial: Denial) -> Denial:
    ctx.findings.append(Finding(None, "deny", denial.status, denial.reason))
    return denial

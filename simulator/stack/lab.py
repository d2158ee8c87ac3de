"""`up`, `down` and `status` for the whole native stack.

`up` is idempotent (a healthy service is left alone), starts what is missing side by side, waits for
real readiness, then provisions the lab realms in Keycloak. If anything fails, or the user presses
Ctrl-C, the services *this call* started are stopped again; `down` stops only services whose state
files the lab wrote.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import httpx

from labcore.config import LabConfig, port_variable
from labcore.errors import LabError
from simulator.authserver.provision import provision_tenants
from simulator.stack.artifacts import Say, quiet
from simulator.stack.process import ProcessManager, ServiceSpec, ServiceState, ServiceStatus
from simulator.stack.services import (
    HEALTH_CHECKS,
    SERVICES,
    SPEC_BUILDERS,
    check_hapi_datasource,
)

Tick = Callable[[str, str], None]  # (service, message)


@dataclass(frozen=True)
class UpResult:
    started: tuple[str, ...]
    reused: tuple[str, ...]
    seconds: dict[str, float]
    realms_created: tuple[str, ...]


def manager(cfg: LabConfig) -> ProcessManager:
    return ProcessManager(cfg.run_dir, cfg.log_dir, cfg.host)


def select(services: Iterable[str] | None) -> list[str]:
    chosen = list(services) if services else list(SERVICES)
    unknown = [s for s in chosen if s not in SERVICES]
    if unknown:
        raise LabError(f"unknown service {unknown[0]!r}", f"choose from {', '.join(SERVICES)}")
    return [s for s in SERVICES if s in chosen]


def wipe_data(cfg: LabConfig, pm: ProcessManager) -> None:
    """Delete the servers' databases (only while nothing is running)."""
    running = [s for s in pm.known_services() if pm.status(s).state != "stopped"]
    if running:
        raise LabError(
            f"--fresh would wipe data under a running lab ({', '.join(running)})",
            "run `fhirlab down` first",
        )
    shutil.rmtree(cfg.data_dir, ignore_errors=True)


def external_health_urls(cfg: LabConfig) -> dict[str, str]:
    """Where to ask each externally run service whether it is ready."""
    return {
        "keycloak": cfg.keycloak_health_url,
        "hapi": f"{cfg.hapi_base_url}/metadata",
        "gateway": f"{cfg.gateway_base_url}/metadata",
    }


def _answers(http: httpx.Client, name: str, url: str) -> bool:
    """Does the externally run service `name` answer its health URL as ready?"""
    try:
        return HEALTH_CHECKS[name](http.get(url))
    except httpx.HTTPError:
        return False


def wait_external(cfg: LabConfig, names: list[str], tick: Tick) -> dict[str, float]:
    """Wait for servers the lab does not run (compose, your own) to answer their health URL."""
    urls = external_health_urls(cfg)
    t0 = time.monotonic()
    seconds: dict[str, float] = {}
    pending = list(names)
    with httpx.Client(timeout=5.0) as http:
        while pending:
            for name in list(pending):
                if _answers(http, name, urls[name]):
                    seconds[name] = time.monotonic() - t0
                    tick(name, f"ready in {seconds[name]:.1f} s (external)")
                    pending.remove(name)
                else:
                    tick(name, f"waiting for {urls[name]} ({time.monotonic() - t0:.0f} s)")
            if pending and time.monotonic() - t0 > cfg.start_timeout_s:
                raise LabError(
                    f"external {', '.join(pending)} not ready after {cfg.start_timeout_s:.0f} s",
                    "start them (e.g. `docker compose up -d`) or check the FHIRLAB_*_URL variables",
                )
            if pending:
                time.sleep(1.0)
    return seconds


def up(
    cfg: LabConfig,
    services: Iterable[str] | None = None,
    fresh: bool = False,
    say: Say = quiet,
    tick: Tick = lambda _s, _m: None,
) -> UpResult:
    names = select(services)
    if cfg.external:
        seconds = wait_external(cfg, names, tick)
        realms = _provision(cfg) if "keycloak" in names else ()
        return UpResult((), tuple(names), seconds, realms)
    if "hapi" in names:
        check_hapi_datasource(cfg)  # before any download, build or start
    pm = manager(cfg)
    if fresh:
        wipe_data(cfg, pm)
    cfg.data_dir.mkdir(parents=True, exist_ok=True)

    specs: dict[str, ServiceSpec] = {}
    reused: list[str] = []
    for name in names:
        spec = SPEC_BUILDERS[name](cfg, say)
        status = pm.status(name, spec.health_check)
        if status.state == "running":
            reused.append(name)
            continue
        if status.state == "unhealthy":
            say(f"{name} (pid {status.pid}) is running but not healthy; restarting it")
            pm.stop(name)
        specs[name] = spec

    for spec in specs.values():
        pm.check_ports(spec, port_variable)

    started: dict[str, ServiceState] = {}
    seconds: dict[str, float] = {}
    t0 = time.monotonic()
    try:
        for name, spec in specs.items():
            started[name] = pm.start(spec)
            tick(name, "starting")
        pending = dict(started)
        while pending:
            for name, state in list(pending.items()):
                if pm.poll_ready(specs[name], state):
                    seconds[name] = time.monotonic() - t0
                    tick(name, f"ready in {seconds[name]:.1f} s")
                    del pending[name]
                else:
                    tick(name, f"waiting for readiness ({time.monotonic() - t0:.0f} s)")
            if pending and time.monotonic() - t0 > cfg.start_timeout_s:
                slow = ", ".join(pending)
                raise LabError(
                    f"{slow} not ready after {cfg.start_timeout_s:.0f} s",
                    f"see `fhirlab logs {next(iter(pending))}`; set FHIRLAB_START_TIMEOUT higher",
                )
            if pending:
                time.sleep(0.5)
        realms = _provision(cfg) if "keycloak" in names else ()
    except BaseException:
        for name in reversed(list(started)):
            pm.stop(name)
        raise
    return UpResult(tuple(started), tuple(reused), seconds, realms)


def _provision(cfg: LabConfig) -> tuple[str, ...]:
    """Complete the tenant realms; names of realms that were created now."""
    created = provision_tenants(cfg)
    return tuple(realm for pieces in created.values() for realm in pieces["realm"])


def down(cfg: LabConfig, services: Iterable[str] | None = None) -> list[str]:
    """Stop the lab's services (gateway first); names of those that were running."""
    if cfg.external:
        raise LabError(
            "FHIRLAB_STACK=external: the lab did not start these servers and will not stop them",
            "stop them where they run (e.g. `docker compose down`)",
        )
    pm = manager(cfg)
    names = select(services)
    stopped = []
    for name in reversed(names):
        if pm.stop(name):
            stopped.append(name)
    return stopped


def status(cfg: LabConfig) -> list[ServiceStatus]:
    if cfg.external:
        urls = external_health_urls(cfg)
        result = []
        with httpx.Client(timeout=5.0) as http:
            for name in SERVICES:
                state = "running" if _answers(http, name, urls[name]) else "stopped"
                result.append(ServiceStatus(name, state, url=urls[name]))
        return result
    pm = manager(cfg)
    return [pm.status(name, HEALTH_CHECKS[name]) for name in SERVICES]

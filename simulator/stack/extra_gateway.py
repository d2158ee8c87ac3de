"""Extra gateway processes beside the lab's own: one per controls configuration, same HAPI, same
Keycloak. The controls-off baseline of `fhirlab run`, each configuration of the `fhirlab load`
matrix and the cost benchmark each get their own, so configurations are compared side by side in
one run without restarting the lab's gateway.

An extra gateway accepts the lab's tokens: its `--public-base` (the token audience) is the lab
gateway's FHIR base. HAPI's links (paging, export) point at whichever gateway asked, through
`X-Forwarded-Host`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml

from gateway.controls import Mode
from gateway.policy import POLICY_FILE, RUNTIME_CONTROLS, load_policy
from labcore.config import LabConfig
from labcore.errors import LabError
from labcore.net import free_port  # re-exported: the load runner, benchmarks and tests use it

# a start is mostly imports (about 2 s of CPU); on two cores busy with HAPI, Keycloak and other
# gateways starting, one took more than 20 s
START_TIMEOUT_S = 60.0


def modes_all(mode: Mode) -> dict[str, Mode]:
    return dict.fromkeys(RUNTIME_CONTROLS, mode)


@dataclass(frozen=True)
class ExtraGateway:
    name: str
    base_url: str  # its FHIR base, e.g. http://127.0.0.1:41234/fhir
    port: int
    audit_dir: Path | None
    policy_file: Path | None
    process: subprocess.Popen[bytes]


def write_extra_policy(
    path: Path,
    modes: Mapping[str, Mode],
    *,
    base: Path | None = None,
    rate_limit: bool = True,
) -> Path:
    policy = load_policy(base or POLICY_FILE).with_modes(dict(modes))
    data = policy.model_dump(mode="json")
    if not rate_limit:
        data["rate_limit"]["enabled"] = False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def source_env(source: Path) -> dict[str, str]:
    """The environment that makes `python -m gateway` run the code in `source` (a checkout),
    whatever the working directory. `-m` puts the working directory first on the path, where
    this checkout's own `gateway` package would win over `source`'s: PYTHONSAFEPATH leaves it
    off."""
    return {**os.environ, "PYTHONPATH": str(source.resolve()), "PYTHONSAFEPATH": "1"}


@contextmanager
def extra_gateway(
    cfg: LabConfig,
    name: str,
    directory: Path,
    modes: Mapping[str, Mode] | None,
    *,
    rate_limit: bool = True,
    server_args: tuple[str, ...] = (),
    log: Path | None = None,
    source: Path | None = None,
) -> Iterator[ExtraGateway]:
    """Start a gateway with `modes` (None: the bare pass-through proxy, no stages) and stop it
    gracefully on exit, so its audit log is complete. Its policy and audit log go under
    `directory`. With `source` (a checkout of another commit), the gateway runs that code."""
    port = free_port(cfg.host)
    cmd = [sys.executable, "-m", "gateway", "--host", cfg.host, "--port", str(port)]
    cmd += ["--upstream", cfg.hapi_base_url, *server_args]
    policy_file = audit_dir = None
    if modes is not None:
        policy_file = write_extra_policy(
            directory / "gateway-policy.yaml",
            modes,
            base=cfg.gateway_policy,
            rate_limit=rate_limit,
        )
        audit_dir = directory / "audit"
        cmd += ["--keycloak", cfg.keycloak_url, "--public-base", cfg.gateway_base_url]
        cmd += ["--policy", str(policy_file), "--audit-dir", str(audit_dir)]
        if cfg.clients_dir is not None:
            cmd += ["--clients", str(cfg.clients_dir)]
    directory.mkdir(parents=True, exist_ok=True)
    log_path = log or directory / "gateway.log"
    with log_path.open("ab") as log_file:
        env = None if source is None else source_env(source)
        proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, env=env)
    health = f"http://{cfg.host}:{port}/_gateway/health"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                tail = log_path.read_text(errors="replace")[-800:]
                raise LabError(f"the {name!r} gateway exited at start", tail.strip())
            try:
                if httpx.get(health, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise LabError(
                    f"the {name!r} gateway did not answer within {START_TIMEOUT_S:.0f} s",
                    f"see {log_path}",
                )
            time.sleep(0.1)
        yield ExtraGateway(
            name=name,
            base_url=f"http://{cfg.host}:{port}/fhir",
            port=port,
            audit_dir=audit_dir,
            policy_file=policy_file,
            process=proc,
        )
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

"""The peer gateway google/fhir-gateway beside the lab, for side-by-side comparisons.

    .venv/bin/python benchmarks/peer_gateway.py

runs it once: builds the launcher (first time only), starts it on a free loopback port, prints its
URL, reads the first seeded patient and searches their observations through it with the
`triage-chatbot` patient token (as `benchmarks/gateway_cost.py` does), prints the statuses and
stops it. `benchmarks/gateway_cost.py --peer` drives it as one more configuration.

What runs is the peer's published library, Maven Central `com.google.fhir.gateway:server` and
`:plugins` 0.3.2, in a Spring Boot 2.7 main (`benchmarks/peer/`: 0.3.2 is a javax.servlet
library, Spring Boot 3 would not load it), with the peer's own settings as its environment:
`PROXY_TO` the lab's HAPI, `TOKEN_ISSUER` the realm URL of tenant-a (the peer reads the realm's
`public_key` there and accepts RS256 tokens of exactly that `iss`; it checks no audience),
`BACKEND_TYPE=HAPI`, `RUN_MODE=PROD`, no allowed-queries file; 0.3.2 has no audit events to
configure. The jar is built with Maven once per version of `benchmarks/peer/` and cached under
the lab's cache (`~/.cache/fhirlab/jars/peer/<digest of pom and sources>/`).

The access checker is the peer's patient checker (`plugins`' `PatientAccessChecker`: one patient
per token, SMART v1/v2 patient scopes), which reads the patient from a `patient_id` claim. The
lab's Keycloak issues it as the SMART `patient` claim (a session note of the lab's launch
authenticator, mapped by the `launch/patient` client scope). The launcher therefore selects
`ACCESS_CHECKER=patient-claim`: the published checker, handed the verified token with `patient`
also readable as `patient_id` (`benchmarks/peer/src/.../PatientClaimAccessCheckerFactory.java`).
Nothing in the lab's Keycloak, HAPI or gateway is changed, with or without the peer.

The JVM runs with its defaults, as the peer's container image runs it (`java -jar`), and the peer
logs every request at INFO through the logback.xml its server jar ships; both are part of what
it costs. Its log goes to `peer-gateway.log` in the given directory.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from labcore.config import LabConfig, load_config
from labcore.errors import LabError
from simulator.load.saturation import TENANT, patient_token
from simulator.stack.artifacts import built_jar
from simulator.stack.extra_gateway import free_port
from simulator.stack.tools import find_jdk

PEER = "google/fhir-gateway"
VERSION = "0.3.2"
JAR_NAME = "fhirlab-peer-gateway.jar"
JAVA = (17, 21, 11)  # Spring Boot 2.7 runs on 8 to 21; 0.3.2's image used 11
# a JVM start (Spring, Tomcat, HAPI's FHIR context on the first request) takes 10-20 s of CPU:
# on two cores busy with HAPI, Keycloak and gateways, allow several times that
START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 15.0
HINT = "the peer needs the lab's HAPI and Keycloak: check `fhirlab status`"


@dataclass(frozen=True)
class PeerGateway:
    base_url: str  # its FHIR base, e.g. http://127.0.0.1:41234/fhir
    port: int
    log_path: Path
    process: subprocess.Popen[bytes]


def peer_jar(cfg: LabConfig) -> Path:
    """The launcher jar for the current `benchmarks/peer/`, built once and cached."""
    project = cfg.repo / "benchmarks" / "peer"
    return built_jar(cfg, project, JAR_NAME, f"the {PEER} {VERSION} launcher", _say)


def _say(message: str) -> None:
    print(message, file=sys.stderr)


def peer_environment(cfg: LabConfig, tenant: str = TENANT) -> dict[str, str]:
    """The peer's settings (environment variables it reads) pointing at the lab."""
    return {
        "PROXY_TO": cfg.hapi_base_url,
        "BACKEND_TYPE": "HAPI",
        "TOKEN_ISSUER": cfg.issuer(tenant),
        "ACCESS_CHECKER": "patient-claim",  # the published patient checker, see the docstring
        "RUN_MODE": "PROD",  # DEV would accept any issuer's tokens
        "ALLOWED_QUERIES_FILE": "",  # none: every request goes through the access checker
    }


@contextmanager
def peer_gateway(cfg: LabConfig, directory: Path, tenant: str = TENANT) -> Iterator[PeerGateway]:
    """Start the peer gateway in front of the lab's HAPI, wait until it answers, stop it on exit.
    Raises `LabError` (or its subclasses) with the reason if Java or Maven is missing, the build
    fails or the peer does not come up."""
    jdk = find_jdk(PEER, JAVA)
    jar = peer_jar(cfg)
    port = free_port(cfg.host)
    directory.mkdir(parents=True, exist_ok=True)
    log_path = directory / "peer-gateway.log"
    cmd = [str(jdk.java), "-jar", str(jar), f"--server.address={cfg.host}"]
    cmd.append(f"--server.port={port}")
    env = {**os.environ, **peer_environment(cfg, tenant)}
    env.pop("WELL_KNOWN_ENDPOINT", None)  # the default, .well-known/openid-configuration
    with log_path.open("ab") as log_file:
        proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, env=env)
    base_url = f"http://{cfg.host}:{port}/fhir"
    try:
        _wait_ready(proc, base_url, log_path)
        yield PeerGateway(base_url=base_url, port=port, log_path=log_path, process=proc)
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_ready(proc: subprocess.Popen[bytes], base_url: str, log_path: Path) -> None:
    """Until GET /metadata answers 200. It needs no token; the first request also initialises
    the peer's servlet (it fetches the issuer's key then), so a 200 means it can check tokens.
    Any other answer is a failed start: the peer does not recover by itself."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if proc.poll() is not None:
            raise LabError(
                f"{PEER} exited at start (exit code {proc.returncode}); {_tail(log_path)}", HINT
            )
        status: int | None = None
        with contextlib.suppress(httpx.HTTPError):  # not listening yet
            status = httpx.get(f"{base_url}/metadata", timeout=30).status_code
        if status == 200:
            return
        if status is not None:
            raise LabError(
                f"{PEER} answered {status} to GET /metadata at start; {_tail(log_path)}", HINT
            )
        if time.monotonic() > deadline:
            raise LabError(
                f"{PEER} did not answer within {START_TIMEOUT_S:.0f} s; {_tail(log_path)}", HINT
            )
        time.sleep(0.5)


def _tail(log_path: Path) -> str:
    """What the peer's log says went wrong: its errors and their causes (a Java stack trace's
    last lines say nothing), else its last lines. The log may be in a directory about to go."""
    lines = log_path.read_text(errors="replace").splitlines()
    said = [line for line in lines if " ERROR " in line or line.startswith("Caused by:")]
    return f"its log {log_path} says:\n" + "\n".join(said[:4] + said[4:][-4:] or lines[-15:])


def main() -> None:
    cfg = load_config()
    try:
        token, patient = patient_token(cfg)
        with (
            tempfile.TemporaryDirectory(prefix="fhirlab-peer-") as tmp,
            peer_gateway(cfg, Path(tmp)) as peer,
        ):
            print(f"{PEER} {VERSION} at {peer.base_url} (pid {peer.process.pid})")
            headers = {"Authorization": f"Bearer {token}", "Accept": "application/fhir+json"}
            for path in (f"/Patient/{patient}", f"/Observation?subject=Patient/{patient}"):
                resp = httpx.get(peer.base_url + path, headers=headers, timeout=30)
                print(f"GET {path}: {resp.status_code}")
    except LabError as exc:
        raise SystemExit(f"error: {exc}") from None


if __name__ == "__main__":
    main()

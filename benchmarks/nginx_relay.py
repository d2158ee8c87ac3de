"""A compiled relay's floor: nginx in front of the lab's HAPI, doing nothing but relaying.

    .venv/bin/python benchmarks/nginx_relay.py

One worker process (the gateway is one process too), event-driven, a keep-alive pool of
connections to HAPI, no access log, no checks: the CPU its worker spends per request is what
relaying one request costs on this machine when the relay is written in C and does no work of
its own. `benchmarks/gateway_cost.py --relay-floor` drives it beside the gateways, so the
gateway's figures can be read against the cheapest proxy there is, not only against a server
that answers without an upstream (`--floor`).

Needs nginx on the PATH or in /usr/sbin (Debian: `apt-get install nginx`); it runs as the
current user with its configuration, logs and temporary files in a throw-away directory. Run
alone, this script starts it, reads a Patient through it and stops it.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psutil
from served import served  # beside this script in benchmarks/

from labcore.config import load_config
from labcore.errors import LabError
from simulator.stack.extra_gateway import free_port

RELAY = "nginx relay"

_CONF = """\
worker_processes 1;
daemon off;
master_process on;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    keepalive_requests 1000000;  # as the gateway: a client's connection is not closed after 1,000
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    upstream hapi {{
        server {upstream};
        keepalive 32;
    }}
    server {{
        listen {host}:{port};
        location / {{
            proxy_pass http://hapi;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""


def nginx_binary() -> str:
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        raise LabError("nginx is not installed (Debian: apt-get install nginx)")
    return found


@contextmanager
def nginx_relay(
    host: str, upstream_base: str, workdir: Path
) -> Iterator[tuple[str, psutil.Process]]:
    """nginx relaying to `upstream_base` (HAPI's FHIR base URL). Yields (its FHIR base URL,
    its worker process: the one that does the relaying)."""
    binary = nginx_binary()
    upstream = urlsplit(upstream_base)
    port = free_port(host)
    workdir.mkdir(parents=True, exist_ok=True)
    workdir.chmod(0o755)  # started as root, nginx's worker runs as an unprivileged user
    conf = workdir / "nginx.conf"
    conf.write_text(
        _CONF.format(dir=workdir, upstream=upstream.netloc, host=host, port=port),
        encoding="utf-8",
    )
    # -e: its startup error log too, so nothing is written outside the directory
    cmd = [binary, "-c", str(conf), "-p", str(workdir), "-e", str(workdir / "error.log")]
    base = f"http://{host}:{port}{upstream.path}"
    what = f"nginx (its error log: {workdir / 'error.log'})"
    with served(cmd, base, workdir / "nginx.out", what, timeout_s=20) as proc:
        workers = psutil.Process(proc.pid).children()
        if len(workers) != 1:
            raise LabError(f"nginx started {len(workers)} worker processes, expected 1")
        yield base, workers[0]  # SIGTERM on exit: nginx's fast shutdown, the worker goes too


def main() -> None:
    cfg = load_config()
    try:
        with (
            tempfile.TemporaryDirectory(prefix="fhirlab-nginx-") as tmp,
            nginx_relay(cfg.host, cfg.hapi_base_url, Path(tmp)) as (base, worker),
        ):
            answer = httpx.get(base + "/Patient", params={"_count": 1}, timeout=30)
            print(
                f"nginx relay at {base} (worker pid {worker.pid}): GET Patient?_count=1 -> "
                f"HTTP {answer.status_code}, {len(answer.content)} bytes"
            )
    except LabError as exc:
        raise SystemExit(f"error: {exc}") from None


if __name__ == "__main__":
    sys.exit(main())

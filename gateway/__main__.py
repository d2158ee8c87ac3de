"""Run the gateway.

    python -m gateway --upstream http://127.0.0.1:8280/fhir --keycloak http://localhost:8180 \\
        --public-base http://localhost:8080/fhir --audit-dir .lab/audit

Without `--keycloak` it runs as a plain pass-through proxy (no stages).
"""

from __future__ import annotations

import argparse
import asyncio
import socket
from pathlib import Path
from typing import Any

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.app import LaneSettings, create_app
from gateway.config import load_gateway_config
from gateway.policy import POLICY_FILE
from gateway.settings import GatewaySettings
from labcore.config import REPO_ROOT
from labcore.errors import LabError
from labcore.net import free_port

# uvicorn's options for the gateway. It sets X-Forwarded-* for HAPI itself and trusts no
# client's; it does not name its server software.
SERVER_OPTIONS: dict[str, Any] = {
    "log_level": "warning",
    "access_log": False,
    "timeout_graceful_shutdown": 10,
    "proxy_headers": False,
    "server_header": False,
}


def delayed(app: ASGIApp, delay_s: float) -> ASGIApp:
    """`app`, answering every HTTP request `delay_s` later: a known cost for the load method's
    tests to find (tests/integration/test_load_method.py), never for a lab's gateway."""

    async def wrapper(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await asyncio.sleep(delay_s)
        await app(scope, receive, send)

    return wrapper


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m gateway", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--upstream", default=GatewaySettings.upstream)
    parser.add_argument("--base-path", default=GatewaySettings.base_path)
    parser.add_argument("--keycloak", help="Keycloak base URL (issuers are its tenant realms)")
    parser.add_argument("--public-base", help="this gateway's FHIR base URL (the token audience)")
    parser.add_argument("--policy", type=Path, default=POLICY_FILE)
    parser.add_argument(
        "--clients", type=Path, help="client profiles over keycloak/clients/ (by client_id)"
    )
    parser.add_argument("--audit-dir", type=Path, help="where audit.jsonl and alerts.jsonl go")
    parser.add_argument("--loop", default="auto", choices=["auto", "asyncio", "uvloop"])
    parser.add_argument("--http", default="auto", choices=["auto", "h11", "httptools"])
    parser.add_argument("--repo", type=Path, default=REPO_ROOT, help=argparse.SUPPRESS)
    parser.add_argument("--test-delay-ms", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument(
        "--fast-lane",
        action="store_true",
        help="put the compiled fast lane (gateway/fastlane/, `make fast-lane`) on --port in "
        "front of this gateway, which then listens on a free loopback port of its own",
    )
    args = parser.parse_args(argv)
    try:
        settings = GatewaySettings(upstream=args.upstream, base_path=args.base_path)
    except ValueError as exc:
        parser.error(str(exc))
    config = None
    if args.keycloak:
        public_base = args.public_base or f"http://localhost:{args.port}{args.base_path}"
        try:
            config = load_gateway_config(
                args.repo,
                args.keycloak,
                public_base,
                settings,
                args.policy,
                args.audit_dir,
                args.clients,
            )
        except LabError as exc:
            parser.exit(2, f"gateway: {exc}\n")
    port, lane = args.port, None
    if args.fast_lane:
        if config is None:
            parser.exit(2, "gateway: --fast-lane needs the policy gateway (--keycloak)\n")
        try:  # the front binds it; say so now rather than after the gateway started
            with socket.socket() as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind((args.host, args.port))
        except OSError as exc:
            parser.exit(2, f"gateway: cannot listen on {args.host}:{args.port} ({exc})\n")
        port = free_port(args.host)
        lane = LaneSettings(f"{args.host}:{args.port}", f"http://{args.host}:{port}")
    try:
        app: ASGIApp = create_app(settings, config=config, lane=lane)
    except LabError as exc:
        parser.exit(2, f"gateway: {exc}\n")
    if args.test_delay_ms > 0:
        app = delayed(app, args.test_delay_ms / 1000)
    uvicorn.run(
        app,
        host=args.host,
        port=port,
        loop=args.loop,
        http=args.http,
        **SERVER_OPTIONS,
    )


if __name__ == "__main__":
    main()

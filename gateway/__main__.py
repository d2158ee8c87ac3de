"""Run the gateway: `python -m gateway --port 8080 --upstream http://127.0.0.1:8280/fhir`."""

from __future__ import annotations

import argparse

import uvicorn

from gateway.app import create_app
from gateway.settings import GatewaySettings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m gateway", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--upstream", default=GatewaySettings.upstream)
    parser.add_argument("--base-path", default=GatewaySettings.base_path)
    args = parser.parse_args(argv)
    try:
        settings = GatewaySettings(upstream=args.upstream, base_path=args.base_path)
    except ValueError as exc:
        parser.error(str(exc))
    uvicorn.run(
        create_app(settings),
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()

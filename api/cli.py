"""`kb serve`: run the REST API with uvicorn.

Without API keys (KB_API_KEYS) the server refuses any address but loopback: an open,
unauthenticated knowledge base on a network is never what anyone meant.
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
from typing import Any

APP_FACTORY = "api.app:app_from_env"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run the REST API (uvicorn)",
        description="Serve the REST API: /v1/ask, /v1/search, /v1/documents, /health, /ready.",
    )
    parser.add_argument("--host", default=None, help="address to bind (default: KB_HOST)")
    parser.add_argument("--port", type=int, default=None, help="port (default: KB_PORT)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (default: 1)")
    parser.add_argument("--log-level", default="info", help="debug, info, warning, error")
    parser.set_defaults(func=serve)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def curl_example(url: str, with_key: bool) -> str:
    auth = ' -H "Authorization: Bearer $KB_API_KEY"' if with_key else ""
    return f"curl -s{auth} '{url}/v1/search?q=hello&k=3'"


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from api.logs import configure_logging
    from kb.settings import Settings

    settings = Settings.from_env()
    host = args.host or settings.host
    port = settings.port if args.port is None else args.port
    if args.workers < 1:
        print("kb: --workers must be at least 1", file=sys.stderr)
        return 2
    if not settings.api_keys and not is_loopback(host):
        print(
            f"kb: refusing to serve on {host} without API keys: set KB_API_KEYS "
            "(comma-separated) or bind to 127.0.0.1",
            file=sys.stderr,
        )
        return 2
    configure_logging(args.log_level)
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}"
    print(f"kb: serving on {url} (docs: {url}/schema/swagger)", flush=True)
    print(f"  try: {curl_example(url, bool(settings.api_keys))}", flush=True)
    uvicorn.run(
        APP_FACTORY,
        factory=True,
        host=host,
        port=port,
        workers=args.workers,
        log_level=args.log_level,
        access_log=False,  # the app logs one line per request, with its request id
    )
    return 0

"""`kb serve`: run the REST API with uvicorn.

Without API keys (KB_API_KEYS) the server refuses any address but loopback: an open,
unauthenticated knowledge base on a network is never what anyone meant.
"""

from __future__ import annotations

import argparse
import ipaddress
import socket
import sys
from collections import Counter
from typing import Any

APP_FACTORY = "api.app:app_from_env"
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run the REST API (uvicorn)",
        description="Serve the REST API: /v1/ask, /v1/search, /v1/documents, /health, /ready.",
    )
    parser.add_argument("--host", default=None, help="address to bind (default: KB_HOST)")
    parser.add_argument("--port", type=int, default=None, help="port (default: KB_PORT)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (default: 1)")
    parser.add_argument("--log-level", default="info", choices=LOG_LEVELS, help="default: info")
    parser.set_defaults(func=serve)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def curl_example(url: str, with_key: bool) -> str:
    auth = " -H 'Authorization: Bearer <one of KB_API_KEYS>'" if with_key else ""
    return f"curl -s{auth} '{url}/v1/search?q=hello&k=3'"


def bind_problem(host: str, port: int) -> str | None:
    """Why `host:port` cannot be bound, or None: checked before the model is loaded."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        return f"cannot resolve {host}: {exc}"
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            return f"cannot listen on {host}:{port}: {exc.strerror or exc}"
    return None


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
    if not 0 < port < 65536:
        print(f"kb: port {port} is out of range: use 1 to 65535", file=sys.stderr)
        return 2
    if not settings.api_keys and not is_loopback(host):
        print(
            f"kb: refusing to serve on {host} without API keys: set KB_API_KEYS "
            "(comma-separated) or bind to 127.0.0.1",
            file=sys.stderr,
        )
        return 2
    problem = bind_problem(host, port)
    if problem is not None:
        print(f"kb: {problem}", file=sys.stderr)
        return 1
    configure_logging(args.log_level)
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}"
    print(f"kb: serving on {url} (docs: {url}/schema/swagger)", flush=True)
    print(f"  try: {curl_example(url, bool(settings.api_keys))}", flush=True)
    if len(served := Counter(settings.key_names.values())) > 1:
        each = ", ".join(f"{name} ({n} key{'s' * (n > 1)})" for name, n in sorted(served.items()))
        print(f"  knowledge bases by key: {each}", flush=True)
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

"""Who may reach the API from where: the `Host` it answers to, the origins that may write, and
the CORS headers it sends.

A server without keys on loopback is still reachable from a browser: a page on another site
can post to `http://127.0.0.1:8000` (a cross-origin "simple" request needs no preflight), and
a name that the attacker's DNS points at 127.0.0.1 reads its answers (DNS rebinding). So:

- `Host` must name the server: `localhost`, a loopback address, the address the connection
  came in on, or a name in `KB_ALLOWED_HOSTS` (`*` allows any); otherwise 400.
- A write (POST, PUT, PATCH, DELETE) whose `Origin` is not the server's own origin nor one of
  `KB_CORS_ORIGINS` is 403. Clients that are not browsers send no `Origin` and are not
  affected.
- CORS headers are sent only for `KB_CORS_ORIGINS`; by default none, so browsers keep other
  sites' pages from reading any answer.

Every response also says how a browser may treat it (`security_headers`): its type is not to
be guessed, no page may frame it, no referrer leaves it, and a Content-Security-Policy lets the
web page (`api.page`) run only its own script and style and talk only to this server. The
OpenAPI docs under `/schema` load Swagger UI and ReDoc from their CDN, so they go without it.
"""

from __future__ import annotations

import contextlib
import ipaddress
from urllib.parse import urlsplit

from litestar.config.cors import CORSConfig
from litestar.types import Message, Scope

from kb.errors import Forbidden, InvalidInput, KBError
from kb.settings import Settings

WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_DEFAULT_PORTS = {"http": 80, "https": 443}

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or ():
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def split_host(host: str) -> tuple[str, int | None]:
    """`Example.com:8000` -> (`example.com`, 8000); `[::1]:80` -> (`::1`, 80). Raises ValueError
    for a malformed value."""
    parsed = urlsplit(f"//{host}")
    port = parsed.port  # raises ValueError for a bad port
    if not parsed.hostname or parsed.username is not None or parsed.path:
        raise ValueError(host)
    return parsed.hostname.lower().rstrip("."), port


def is_loopback(name: str) -> bool:
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class Gate:
    """The `Host` and `Origin` checks, made once from settings."""

    def __init__(self, settings: Settings) -> None:
        self.any_host = "*" in settings.allowed_hosts
        self.hosts = {h.lower().rstrip(".") for h in settings.allowed_hosts}
        self.origins = {origin_key(o) for o in settings.cors_origins}

    def problem(self, scope: Scope) -> KBError | None:
        """Why this request is refused, or None."""
        host = _header(scope, b"host")
        if host is not None and not self.any_host:
            try:
                name, _ = split_host(host)
            except ValueError:
                return InvalidInput(f"invalid Host header {host!r}")
            bound = str((scope.get("server") or ("",))[0] or "").lower()
            if not (is_loopback(name) or name == bound or name in self.hosts):
                return InvalidInput(
                    f"this server does not answer to Host {name!r}: add it to KB_ALLOWED_HOSTS"
                )
        origin = _header(scope, b"origin")
        if origin is None or scope.get("method") not in WRITES:
            return None
        allowed = set(self.origins)
        if host is not None:  # the server's own origin, as the client named it
            with contextlib.suppress(ValueError):
                allowed.add(origin_key(f"{scope.get('scheme', 'http')}://{host}"))
        with contextlib.suppress(ValueError):  # `null` and non-http origins are never allowed
            if origin_key(origin) in allowed:
                return None
        return Forbidden(
            f"cross-origin write refused: Origin {origin!r} is not this server's origin; "
            "allow it with KB_CORS_ORIGINS"
        )


def origin_key(origin: str) -> tuple[str, str, int]:
    """An origin as (scheme, host, port) with the default port filled in. Raises ValueError
    for anything that is not an http(s) origin (`null` included)."""
    parsed = urlsplit(origin.strip())
    scheme = parsed.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parsed.hostname:
        raise ValueError(origin)
    return scheme, parsed.hostname.lower().rstrip("."), parsed.port or _DEFAULT_PORTS[scheme]


def cors_config(settings: Settings) -> CORSConfig | None:
    """Deliberate CORS: the configured origins only, with the headers a client sends."""
    if not settings.cors_origins:
        return None
    return CORSConfig(
        allow_origins=list(settings.cors_origins),
        allow_methods=["GET", "HEAD", "POST", "DELETE", "OPTIONS"],
        allow_headers=["authorization", "content-type", "x-request-id"],
        expose_headers=["x-request-id"],
        allow_credentials=False,
        max_age=600,
    )


async def security_headers(message: Message, scope: Scope) -> None:
    """`before_send` hook: the headers above on every HTTP response (see the module doc)."""
    if message["type"] != "http.response.start" or scope["type"] != "http":
        return
    headers = list(message.get("headers") or [])
    headers.extend(SECURITY_HEADERS)
    path = scope.get("path", "")
    if path != "/schema" and not path.startswith("/schema/"):
        headers.append((b"content-security-policy", CONTENT_SECURITY_POLICY.encode()))
    message["headers"] = headers

"""Bearer-key authentication for the `/v1` routes.

With `settings.api_keys` empty the guard lets everything through (and `kb serve` then refuses
to bind to anything but loopback). Keys are compared in constant time.
"""

from __future__ import annotations

import hmac
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from kb.errors import Unauthorized
from kb.settings import Settings


def bearer_token(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def key_matches(token: str, keys: tuple[str, ...]) -> bool:
    presented = token.encode()
    matched = False
    for key in keys:  # no early exit: every key is compared
        matched |= hmac.compare_digest(presented, key.encode())
    return matched


def make_guard(settings: Settings) -> Any:
    keys = settings.api_keys

    def require_api_key(
        connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
    ) -> None:
        if not keys:
            return
        token = bearer_token(connection.headers.get("authorization"))
        if token is None:
            raise Unauthorized("missing bearer token: send 'Authorization: Bearer <key>'")
        if not key_matches(token, keys):
            raise Unauthorized("invalid API key")

    return require_api_key

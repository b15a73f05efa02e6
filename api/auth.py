"""Bearer-key authentication for the `/v1` routes, and the knowledge base each key reaches.

With `settings.api_keys` empty the guard lets everything through (and `kb serve` then refuses
to bind to anything but loopback). Keys are compared in constant time. The guard puts the
name of the key's knowledge base (`Settings.key_names`) in the request's state, where the
`kb` dependency (`api.deps`) finds it: a handler only ever sees its key's knowledge base.
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


def key_name(token: str, key_names: dict[str, str]) -> str | None:
    """The knowledge base `token` reaches, or None for no key's."""
    presented = token.encode()
    found = None
    for key, name in key_names.items():  # no early exit: every key is compared
        if hmac.compare_digest(presented, key.encode()):
            found = name
    return found


def make_guard(settings: Settings) -> Any:
    key_names = settings.key_names

    def require_api_key(
        connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
    ) -> None:
        if not key_names:
            return
        token = bearer_token(connection.headers.get("authorization"))
        if token is None:
            raise Unauthorized("missing bearer token: send 'Authorization: Bearer <key>'")
        name = key_name(token, key_names)
        if name is None:
            raise Unauthorized("invalid API key")
        connection.state.kb_name = name

    return require_api_key

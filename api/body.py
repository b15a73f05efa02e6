"""Request bodies arrive in time, or not at all.

A body must arrive whole within `KB_BODY_TIMEOUT` seconds and, after its first `GRACE`
seconds, at an average of at least `KB_BODY_MIN_RATE` bytes a second. A client that stalls or
trickles (a byte a second keeps a connection open for days) gets a 408 `request_timeout` and
its connection is closed; what it sent is discarded (an upload's handler removes its temp
files). A client that disconnects before its body is complete is a `ClientDisconnected`, logged
as such, never a server error. Once the body is complete, `receive` is passed through as is: a
streaming response waits on it for the client's disconnect for as long as it streams.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import anyio
from litestar.types import ASGIApp, Receive, ReceiveMessage, Scope, Send

from kb.errors import ClientDisconnected, RequestTimeout

GRACE = 10.0  # seconds before the minimum rate is enforced: a slow start is no attack


def limit_body(
    receive: Receive,
    timeout: float,
    min_rate: int,
    clock: Callable[[], float] = time.monotonic,
) -> Receive:
    """`receive` with a deadline on the body: every wait ends when the body is overdue."""
    started: float | None = None
    received = 0
    complete = False

    def too_slow() -> RequestTimeout:
        rate = f" and at least {min_rate:,} bytes a second" if min_rate else ""
        return RequestTimeout(
            f"the request body did not arrive in time: {received:,} bytes received; a body "
            f"must arrive within {timeout:g}s{rate}"
        )

    async def limited() -> ReceiveMessage:
        nonlocal started, received, complete
        if complete:
            return await receive()
        now = clock()
        if started is None:
            started = now
        due = started + timeout
        if min_rate:
            due = min(due, started + GRACE + received / min_rate)
        if due <= now:
            raise too_slow()
        try:
            with anyio.fail_after(due - now):
                message = await receive()
        except TimeoutError:
            raise too_slow() from None
        if message["type"] == "http.disconnect":
            complete = True
            raise ClientDisconnected(
                f"the client disconnected after sending {received:,} bytes of its request body"
            )
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            complete = not message.get("more_body", False)
        return message

    return limited


def body_deadline(app: ASGIApp, timeout: float, min_rate: int) -> ASGIApp:
    """ASGI middleware: every HTTP request's body under `limit_body`."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            receive = limit_body(receive, timeout, min_rate)
        await app(scope, receive, send)

    return middleware

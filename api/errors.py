"""One error shape for every failure, and the request id that ties a response to its logs.

Every response carries `x-request-id` (the client's, when it sent a sane one, else a new one);
every error body is `{"error": {"type", "message"}, "request_id"}`. A `KBError` keeps its own
status and code; Litestar's HTTP errors keep their status; anything else is a 500 with a
generic message, logged here with its traceback and never sent to the client.

Only the client's own failed authentication (`Unauthorized`, or Litestar's 401) carries
`WWW-Authenticate`: Anthropic refusing kb's key is a 502 (`UpstreamAuthError`), since no
credential the client could send would fix it. A client that disconnects mid-request is logged
at INFO as a disconnect (status 499), without a traceback; a body too slow to arrive is a 408
that closes the connection.

What a client sent (a path, a method) is logged with its control characters escaped
(`printable`), so a `%0a` in a path cannot write a forged line into the log.
"""

from __future__ import annotations

import contextvars
import logging
import re
import time
import uuid
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.types import ASGIApp, HTTPResponseStartEvent, Message, Receive, Scope, Send

from api.schemas import ErrorBody, ErrorResponse
from kb.errors import ClientDisconnected, KBError, RequestTimeout, Unauthorized

log = logging.getLogger("kb.api")

REQUEST_ID_HEADER = "x-request-id"
_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
current_request_id: contextvars.ContextVar[str] = contextvars.ContextVar(
    "kb_request_id", default="-"
)

_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\\]")
_HTTP_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    413: "too_large",
    415: "unsupported_type",
    429: "rate_limited",
    503: "unavailable",
}


def printable(text: str) -> str:
    """`text` with control characters (and backslashes) escaped: one log line stays one line."""
    return _UNPRINTABLE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


class EscapingFormatter(logging.Formatter):
    """Escapes control characters in each record's message (its traceback stays as it is)."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = printable(record.message)
        return super().formatMessage(record)


class RequestIdFilter(logging.Filter):
    """Adds `request_id` to every log record (`-` outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id.get()
        return True


def request_id_of(scope: Scope) -> str:
    """The request's id, created on first use from the client's header or a new uuid."""
    state: dict[str, Any] = scope.setdefault("state", {})
    rid = state.get("request_id")
    if rid is None:
        sent = (
            dict(scope.get("headers") or []).get(REQUEST_ID_HEADER.encode(), b"").decode("latin-1")
        )
        rid = sent if _SANE_ID.match(sent) else uuid.uuid4().hex
        state["request_id"] = rid
    return str(rid)


async def add_request_id_header(message: Message, scope: Scope) -> None:
    """`before_send` hook: every HTTP response carries the request id."""
    if message["type"] == "http.response.start" and scope["type"] == "http":
        headers = list(message.get("headers") or [])
        headers.append((REQUEST_ID_HEADER.encode(), request_id_of(scope).encode("latin-1")))
        message["headers"] = headers


def request_log_middleware(app: ASGIApp) -> ASGIApp:
    """Binds the request id to the logging context and logs one line per request."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        token = current_request_id.set(request_id_of(scope))
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await app(scope, receive, send_wrapper)
        finally:
            log.info(
                "%s %s %d %.1fms",
                printable(str(scope.get("method", "-"))),
                printable(scope["path"]),
                status,
                (time.perf_counter() - started) * 1000,
            )
            current_request_id.reset(token)

    return middleware


CHALLENGE = {"www-authenticate": "Bearer"}


def error_response(
    request: Request[Any, Any, Any],
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
) -> Response[Any]:
    body = ErrorResponse(ErrorBody(type=code, message=message), request_id_of(request.scope))
    return Response(body, status_code=status, headers=headers)


def handle_kb_error(request: Request[Any, Any, Any], exc: KBError) -> Response[Any]:
    if exc.status >= 500:
        log.warning("%s: %s [%s]", exc.code, exc, request_id_of(request.scope))
    elif isinstance(exc, ClientDisconnected):
        log.info("client disconnected: %s", exc)
    headers: dict[str, str] | None = None
    if isinstance(exc, Unauthorized):
        headers = dict(CHALLENGE)
    elif isinstance(exc, RequestTimeout):
        headers = {"connection": "close"}  # the rest of the body is never read
    return error_response(request, exc.status, exc.code, str(exc), headers)


def handle_validation(request: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    problems = []
    for item in exc.extra if isinstance(exc.extra, list) else []:
        if isinstance(item, dict):
            key = item.get("key")
            text = str(item.get("message", "invalid value"))
            problems.append(f"{key}: {text}" if key else text)
    message = "; ".join(problems) or str(exc.detail)
    return error_response(request, 400, "invalid_request", message)


def handle_http(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    status = exc.status_code
    if status >= 500:
        return handle_unexpected(request, exc)
    code = _HTTP_CODES.get(status, "http_error")
    headers = dict(CHALLENGE) if status == 401 else None  # Litestar auth: the client's own
    return error_response(request, status, code, str(exc.detail), headers)


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.error(
        "unhandled error on %s %s [%s]",
        request.method,
        request.url.path,
        request_id_of(request.scope),
        exc_info=exc,
    )
    return error_response(request, 500, "internal_error", "Internal server error.")


async def send_error(scope: Scope, send: Send, exc: KBError) -> None:
    """Answer with `exc` in the error shape before the request reaches Litestar."""
    body = msgspec.json.encode(ErrorResponse(ErrorBody(exc.code, str(exc)), request_id_of(scope)))
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (REQUEST_ID_HEADER.encode(), request_id_of(scope).encode("latin-1")),
    ]
    start: HTTPResponseStartEvent = {
        "type": "http.response.start",
        "status": exc.status,
        "headers": headers,
    }
    await send(start)
    await send({"type": "http.response.body", "body": body, "more_body": False})


EXCEPTION_HANDLERS: dict[Any, Any] = {
    KBError: handle_kb_error,
    ValidationException: handle_validation,
    HTTPException: handle_http,
    Exception: handle_unexpected,
}

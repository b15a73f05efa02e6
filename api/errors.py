"""One error shape for every failure, and the request id that ties a response to its logs.

Every response carries `x-request-id` (the client's, when it sent a sane one, else a new one);
every error body is `{"error": {"type", "message"}, "request_id"}`. A `KBError` keeps its own
status and code; Litestar's HTTP errors keep their status; anything else is a 500 with a
generic message, logged here with its traceback and never sent to the client.

Only the client's own failed authentication (`Unauthorized`, or Litestar's 401) carries
`WWW-Authenticate`: Anthropic refusing kb's key is a 502 (`UpstreamAuthError`), since no
credential the client could send would fix it.
"""

from __future__ import annotations

import contextvars
import logging
import re
import time
import uuid
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from api.schemas import ErrorBody, ErrorResponse
from kb.errors import KBError, Unauthorized

log = logging.getLogger("kb.api")

REQUEST_ID_HEADER = "x-request-id"
_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
current_request_id: contextvars.ContextVar[str] = contextvars.ContextVar(
    "kb_request_id", default="-"
)

_HTTP_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_type",
    429: "rate_limited",
    503: "unavailable",
}


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
                scope.get("method", "-"),
                scope["path"],
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
    headers = dict(CHALLENGE) if isinstance(exc, Unauthorized) else None
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


EXCEPTION_HANDLERS: dict[Any, Any] = {
    KBError: handle_kb_error,
    ValidationException: handle_validation,
    HTTPException: handle_http,
    Exception: handle_unexpected,
}

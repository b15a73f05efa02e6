"""The one place where Anthropic SDK errors become `kb.errors`.

Relies only on what the contract promises: a status code, and *maybe* a JSON envelope
`{"error": {"type", "message"}, "request_id"}`. Error bodies can be HTML from a proxy (a 502
page), lack `request_id` (413s from the edge), and an `error` event can arrive in a stream
after its 200 (the SDK raises it with `status_code == 200`): each still yields a clear message.

Everything Anthropic answers is an `UpstreamError` (see the tree in `kb.errors`): its 401/403
is kb's key being refused (`UpstreamAuthError`), never the caller's 401; its 400 is a request
kb built being refused (`UpstreamRejected`), never the caller's 400; its 404 is
`UpstreamNotFound`, never the caller's 404.
"""

from __future__ import annotations

import html
import re
from email.utils import parsedate_to_datetime
from typing import Any

from kb.errors import (
    KBError,
    RateLimited,
    UpstreamAuthError,
    UpstreamError,
    UpstreamNotFound,
    UpstreamRejected,
    UpstreamTimeout,
)

_MODEL = re.compile(r"\bmodel\b", re.I)
_TAGS = re.compile(r"<(script|style)\b.*?</\1>|<[^>]+>", re.I | re.S)
BUSY_TYPES = {"rate_limit_error": "rate limited", "overloaded_error": "overloaded"}
KEY_HINT = "check ANTHROPIC_API_KEY"


def retry_hint(exc: Any) -> str | None:
    """The server's retry delay (`retry-after-ms`, then `retry-after` in seconds or as an HTTP
    date) as advice to the user; None when there is none or it cannot be read."""
    headers = getattr(getattr(exc, "response", None), "headers", None) or {}
    try:
        if ms := headers.get("retry-after-ms"):
            return f"retry after {float(ms) / 1000:g} s"
    except ValueError:
        pass
    seconds = headers.get("retry-after")
    if not seconds:
        return None
    try:
        return f"retry after {float(seconds):g} s"
    except ValueError:
        pass
    try:
        return f"retry after {parsedate_to_datetime(seconds).isoformat()}"
    except (TypeError, ValueError):
        return None


def _text_of(body: Any, limit: int = 200) -> str:
    """A short, readable rendering of a non-JSON error body (e.g. a proxy's HTML page)."""
    text = html.unescape(_TAGS.sub(" ", str(body)))
    text = " ".join(text.split())
    return text[:limit] + ("…" if len(text) > limit else "")


def _envelope(exc: Any) -> tuple[str, str, str]:
    """(error type, message, request id) from whatever the error body holds."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        raw = body.get("error")
        error: dict[str, Any] = raw if isinstance(raw, dict) else {}
        kind = str(error.get("type") or getattr(exc, "type", None) or "")
        message = str(error.get("message") or "")
        rid = getattr(exc, "request_id", None) or body.get("request_id") or ""
        return kind, message or _text_of(getattr(exc, "message", "")), str(rid)
    status = getattr(exc, "status_code", "?")
    detail = _text_of(body) if body else ""
    message = f"HTTP {status} with a non-JSON body" + (f": {detail}" if detail else "")
    return "", message, str(getattr(exc, "request_id", None) or "")


def to_kb_error(exc: BaseException, what: str = "Anthropic request") -> KBError:
    """Map an SDK exception (or anything raised while talking to Anthropic) to `kb.errors`."""
    import anthropic

    if isinstance(exc, KBError):
        return exc
    if isinstance(exc, anthropic.APITimeoutError):
        return UpstreamTimeout(f"{what} timed out")
    if isinstance(exc, anthropic.APIConnectionError):
        return UpstreamError(f"{what} failed: could not reach the Anthropic API ({exc})")
    if not isinstance(exc, anthropic.APIStatusError):
        return UpstreamError(f"{what} failed: {type(exc).__name__}: {exc}")
    status = exc.status_code
    kind, message, request_id = _envelope(exc)
    rid = f" (request {request_id})" if request_id else ""
    detail = f"{what} failed: {message}{rid}"
    if status < 400:  # an `error` event after the stream's 200
        where = f"{what} failed mid-stream"
        if kind in BUSY_TYPES:
            return RateLimited(f"{where}: Anthropic is {BUSY_TYPES[kind]}{rid}", hint=message)
        return UpstreamError(f"{where}: {kind or 'error'}: {message}{rid}")
    if status == 401:
        return UpstreamAuthError(
            f"{what} failed: Anthropic rejected kb's API key: {message}{rid}", hint=KEY_HINT
        )
    if status == 402:
        return UpstreamAuthError(
            f"{what} failed: Anthropic refused kb's account for billing: {message}{rid}",
            hint="check the Anthropic account's billing",
        )
    if status == 403:
        return UpstreamAuthError(
            f"{what} not permitted for kb's API key: {message}{rid}",
            hint=f"{KEY_HINT} and its workspace's permissions",
        )
    if status == 404:
        return UpstreamNotFound(detail, hint=_model_hint(message))
    if status in (429, 529) or kind in BUSY_TYPES:
        state = BUSY_TYPES.get(kind) or ("rate limited" if status == 429 else "overloaded")
        hint = retry_hint(exc) or "the SDK's retries are used up; try again later"
        return RateLimited(f"{what} failed: Anthropic is {state}{rid}", hint=hint)
    if status in (408, 504):
        return UpstreamTimeout(detail)
    if status >= 500:
        return UpstreamError(detail)
    # 400 (a bad model, a file it will not store, a storage quota), 413 and any other 4xx
    return UpstreamRejected(detail, hint=_model_hint(message))


def _model_hint(message: str) -> str | None:
    """Advice when Anthropic's message is about the model kb asked for."""
    return "check KB_CLAUDE_MODEL" if _MODEL.search(message) else None

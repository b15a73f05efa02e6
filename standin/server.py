"""A raw-ASGI stand-in for the Anthropic Files and Messages APIs (contract §10).

`StandIn(state)` is the ASGI app; `serve(app)` runs it on loopback in a thread. Both auth
headers are accepted (`x-api-key` or `Authorization: Bearer`); `anthropic-version` is required.
The Files API speaks both dialects: GA (`page`/`next_page`/`ids[]`, `expires_at`) and, when
the request carries `anthropic-beta: files-api-2025-04-14`, the legacy one
(`after_id`/`before_id`, `has_more/first_id/last_id`). Every request is logged to `state.log`;
faults in `state.faults` fail matching requests (see `store.Fault`). Message Batches are in
`standin.batches`.
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any
from urllib.parse import parse_qs

from standin import batches, files_api, messages
from standin.loopback import serve_in_thread
from standin.messages import ApiError
from standin.store import LoggedRequest, State, new_id

FILES_BETA = "files-api-2025-04-14"
AGENTS_BETA = "managed-agents-2026-04-01"
Response = tuple[int, dict[str, str], bytes]


def _json(status: int, data: Any) -> Response:
    return status, {"content-type": "application/json"}, json.dumps(data).encode()


def _error_body(err: ApiError, request_id: str | None) -> dict[str, Any]:
    error: dict[str, Any] = {"type": err.error_type, "message": err.message}
    if err.error_code:
        error["details"] = {"error_code": err.error_code}
    body: dict[str, Any] = {"type": "error", "error": error}
    if request_id:  # absent, e.g., on a 413 from the edge (contract §4.1)
        body["request_id"] = request_id
    return body


_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


class StandIn:
    def __init__(self, state: State | None = None) -> None:
        self.state = state or State()
        self.api_keys: set[str] | None = None  # None: any non-empty key is valid

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = bytearray()
        while True:
            event = await receive()
            body += event.get("body", b"")
            if not event.get("more_body"):
                break
        headers: dict[str, str] = {}
        for k, v in scope["headers"]:
            key = k.decode("latin-1").lower()
            val = v.decode("latin-1")
            headers[key] = f"{headers[key]},{val}" if key in headers else val
        method, path = scope["method"], scope["path"]
        entry = LoggedRequest(method, path, scope["query_string"].decode(), headers, len(body))
        if headers.get("content-type", "").startswith("application/json") and body:
            try:
                entry.json = json.loads(body)
            except ValueError:
                entry.json = None
        self.state.log.append(entry)
        request_id = new_id("req_")
        fault = self.state.take_fault(method, path)
        if fault and fault.kind == "drop":
            await self._drop(send)
            return
        if fault and fault.kind == "html":
            await self._html(send, fault.status)
            return
        if fault and fault.kind == "slow":
            await asyncio.sleep(fault.delay)
        try:
            if fault and fault.kind == "status":
                raise ApiError(
                    fault.status,
                    fault.error_type or _TYPES.get(fault.status, "api_error"),
                    "injected fault",
                )
            status, out_headers, payload = self._handle(method, path, headers, bytes(body), entry)
            if fault and fault.kind == "after_drop":
                await self._drop(send)
                return
            if fault and fault.kind == "after_status":
                raise ApiError(
                    fault.status,
                    _TYPES.get(fault.status, "api_error"),
                    "injected fault after the work was done",
                )
        except ApiError as err:
            status, out_headers = err.status, {"content-type": "application/json"}
            bare = not self.state.quirks.error_request_id
            payload = json.dumps(_error_body(err, None if bare else request_id)).encode()
            if fault:
                out_headers.update(fault.headers)
        entry.status = status
        if status < 400 or self.state.quirks.error_request_id:
            out_headers["request-id"] = request_id
        if out_headers.get("content-type") == "text/event-stream":
            await self._stream(send, out_headers, payload)
            return
        out_headers["content-length"] = str(len(payload))
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(k.encode(), v.encode()) for k, v in out_headers.items()],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    async def _drop(self, send: Any) -> None:
        """Start a response and return without finishing it: the server closes the socket."""
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", b"1000"), (b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": b"{", "more_body": True})

    async def _html(self, send: Any, status: int) -> None:
        """A proxy's error page: not JSON, no request-id."""
        page = f"<html><body><h1>{status} Bad Gateway</h1><p>nginx</p></body></html>".encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"text/html"),
                    (b"content-length", str(len(page)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": page})

    async def _stream(self, send: Any, headers: dict[str, str], payload: bytes) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
            }
        )
        for chunk in messages.sse(json.loads(payload), self.state.quirks):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    # Routing -------------------------------------------------------------------------------

    def _handle(
        self, method: str, path: str, headers: dict[str, str], body: bytes, entry: LoggedRequest
    ) -> Response:
        key = headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer ")
        if (
            not key
            or key.startswith("Basic ")
            or (self.api_keys is not None and key not in self.api_keys)
        ):
            raise ApiError(
                401,
                "authentication_error",
                "invalid x-api-key" if key else "x-api-key header is required",
            )
        if not headers.get("anthropic-version"):
            raise ApiError(400, "invalid_request_error", "anthropic-version: header is required")
        betas = {b.strip() for b in headers.get("anthropic-beta", "").split(",") if b.strip()}
        query = parse_qs(entry.query, keep_blank_values=True)
        ga = FILES_BETA not in betas
        segments = [s for s in path.split("/") if s]
        if segments[:2] == ["v1", "files"]:
            if len(segments) == 2 and method == "POST":
                return _json(200, files_api.upload(self.state, headers, body, ga))
            if len(segments) == 2 and method == "GET":
                return _json(200, files_api.list_files(self.state, query, ga, AGENTS_BETA in betas))
            if len(segments) >= 3:
                stored = self.state.files.get(segments[2])
                if stored is None:
                    raise ApiError(404, "not_found_error", f"File `{segments[2]}` not found.")
                if len(segments) == 3 and method == "GET":
                    return _json(
                        200, stored.metadata(ga=ga, fractional=self.state.quirks.fractional_seconds)
                    )
                if len(segments) == 3 and method == "DELETE":
                    with self.state.lock:
                        self.state.files.pop(stored.id, None)
                    return _json(200, {"id": stored.id, "type": "file_deleted"})
                if segments[3:] == ["content"] and method == "GET":
                    if stored.expired:
                        raise ApiError(404, "not_found_error", "File has expired.", "file_expired")
                    if not stored.downloadable:
                        raise ApiError(
                            400,
                            "invalid_request_error",
                            "Files you upload cannot be downloaded.",
                            "file_not_downloadable",
                        )
                    return 200, {"content-type": stored.mime_type}, stored.data
        if segments[:3] == ["v1", "messages", "batches"]:
            return self._batches(method, segments[3:], headers, body, entry, query)
        if segments[:2] == ["v1", "messages"] and method == "POST":
            if len(body) > self.state.max_body_bytes:
                raise ApiError(413, "request_too_large", "Request exceeds the maximum size")
            data = entry.json
            if not isinstance(data, dict):
                raise ApiError(400, "invalid_request_error", "The request body is not valid JSON.")
            if segments[2:] == ["count_tokens"]:
                return _json(200, {"input_tokens": messages.prepare(self.state, data).tokens})
            if segments[2:]:
                raise ApiError(404, "not_found_error", f"Not found: {path}")
            if not isinstance(data.get("max_tokens"), int):
                raise ApiError(400, "invalid_request_error", "max_tokens: Field required")
            msg = messages.message(self.state, data)
            if data.get("stream"):
                return 200, {"content-type": "text/event-stream"}, json.dumps(msg).encode()
            return _json(200, msg)
        raise ApiError(404, "not_found_error", f"Not found: {method} {path}")

    def _batches(
        self,
        method: str,
        rest: list[str],
        headers: dict[str, str],
        body: bytes,
        entry: LoggedRequest,
        query: dict[str, list[str]],
    ) -> Response:
        state, host = self.state, headers.get("host", "127.0.0.1")
        fractional = state.quirks.fractional_seconds
        if not rest and method == "POST":
            if len(body) > state.max_batch_bytes:
                raise ApiError(413, "request_too_large", "Request exceeds the maximum size")
            if not isinstance(entry.json, dict):
                raise ApiError(400, "invalid_request_error", "The request body is not valid JSON.")
            return _json(200, batches.create(state, entry.json).view(host, fractional))
        if not rest and method == "GET":
            return _json(200, batches.listing(state, query, host, fractional))
        if rest:
            batch = batches.get(state, rest[0])
            if len(rest) == 1 and method == "GET":
                batches.advance(state, batch)
                return _json(200, batch.view(host, fractional))
            if len(rest) == 1 and method == "DELETE":
                return _json(200, batches.delete(state, batch))
            if rest[1:] == ["cancel"] and method == "POST":
                batches.cancel(state, batch)
                return _json(200, batch.view(host, fractional))
            if rest[1:] == ["results"] and method == "GET":
                return 200, {"content-type": "application/binary"}, batches.results(state, batch)
        raise ApiError(404, "not_found_error", f"Not found: {method} /v1/messages/batches")


def serve(app: StandIn) -> tuple[Any, threading.Thread, str]:
    """Start the stand-in in a thread; return (server, thread, base_url) once it accepts."""
    return serve_in_thread(
        app, timeout=10, log_level="critical", lifespan="off", timeout_keep_alive=5
    )

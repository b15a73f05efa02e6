"""Files API endpoints of the stand-in: multipart upload and listing in both dialects."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import unquote

from standin.messages import ApiError
from standin.store import State, sniff_mime

_FORBIDDEN = set('<>:"|?*') | {chr(c) for c in range(32)}
_EXT = {
    "application/pdf": ".pdf",
    "text/plain": ".txt",
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/gif": ".gif",
    "image/webp": ".webp",
}


def parse_multipart(body: bytes, content_type: str) -> list[tuple[dict[str, str], bytes]]:
    """Parts as (headers incl. `name`/`filename` from Content-Disposition, content)."""
    boundary = ""
    for item in content_type.split(";")[1:]:
        key, _, value = item.strip().partition("=")
        if key.lower() == "boundary":
            boundary = value.strip('"')
    if not boundary:
        raise ApiError(400, "invalid_request_error", "multipart boundary missing")
    parts = []
    for raw in body.split(b"--" + boundary.encode())[1:]:
        if raw.startswith(b"--"):
            break
        head, _, content = raw.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        headers: dict[str, str] = {}
        for line in head.decode("utf-8", errors="replace").split("\r\n"):
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        for item in headers.get("content-disposition", "").split(";")[1:]:
            key, _, value = item.strip().partition("=")
            headers[key.lower()] = unquote(value.strip().strip('"'))
        parts.append((headers, content.removesuffix(b"\r\n")))
    return parts


def upload(state: State, headers: dict[str, str], body: bytes, ga: bool) -> dict[str, Any]:
    parts = parse_multipart(body, headers.get("content-type", ""))
    file_part = next((p for p in parts if p[0].get("name") == "file"), None)
    if file_part is None:
        raise ApiError(400, "invalid_request_error", "file: Field required")
    part_headers, data = file_part
    if len(data) > state.max_file_bytes:
        raise ApiError(
            413, "request_too_large", "Request exceeds the maximum allowed number of bytes."
        )
    declared = part_headers.get("content-type", "").split(";")[0].strip()
    if not declared and not ga:
        raise ApiError(400, "invalid_request_error", "file: Content-Type is required")
    mime = declared or sniff_mime(data)
    name = part_headers.get("filename", "").replace("\\", "/").rsplit("/", 1)[-1]
    name = name or "unnamed" + _EXT.get(mime, "")
    if len(name) > 255 or _FORBIDDEN & set(name):
        raise ApiError(400, "invalid_request_error", f"Invalid filename: {name!r}")
    expires = None
    for p_headers, value in parts:
        if p_headers.get("name") == "expires_in_seconds" and ga:
            seconds = int(value.decode() or 0)
            if not 3600 <= seconds <= 7776000:
                raise ApiError(
                    400,
                    "invalid_request_error",
                    "expires_in_seconds: must be between 3600 and 7776000",
                )
            expires = datetime.now(UTC) + timedelta(seconds=seconds)
    if state.used_bytes() + len(data) > state.storage_quota:
        raise ApiError(
            400, "invalid_request_error", "Storage quota exceeded.", "storage_quota_exceeded"
        )
    stored = state.add_file(name, mime, data)
    stored.expires_at = expires
    return stored.metadata(ga=ga, fractional=state.quirks.fractional_seconds)


T = TypeVar("T")


def list_limit(query: dict[str, list[str]]) -> int:
    """A list's `limit` (contract: 1 to 1000, 20 unless given)."""
    raw = query["limit"][0] if "limit" in query else None
    try:
        limit = int(raw or 20)
    except ValueError:
        limit = 0
    if not 1 <= limit <= 1000:
        raise ApiError(400, "invalid_request_error", "limit: must be between 1 and 1000")
    return limit


def around(
    items: list[T], ids: list[str], after: str | None, before: str | None, limit: int
) -> tuple[list[T], bool]:
    """The legacy cursor page of a newest-first list: up to `limit` items after `after` or
    before `before` (an id), and whether more lie beyond them; none for an unknown id."""
    anchor = after or before
    if anchor not in ids:
        return [], False
    if after:
        start = ids.index(anchor) + 1
        return items[start : start + limit], start + limit < len(items)
    end = ids.index(anchor)
    return items[max(0, end - limit) : end], end - limit > 0


def list_files(state: State, query: dict[str, list[str]], ga: bool, agents: bool) -> dict[str, Any]:
    def one(name: str) -> str | None:
        return query[name][0] if name in query else None

    limit = list_limit(query)
    files = state.newest_first()
    after, before = one("after_id"), one("before_id")
    if ga and not agents and (after or before):
        raise ApiError(
            400, "invalid_request_error", "after_id and before_id are not supported; use page"
        )
    ids = query.get("ids[]", []) + query.get("ids", [])
    if ga and ids:
        if "page" in query or "limit" in query:
            raise ApiError(
                400, "invalid_request_error", "ids cannot be combined with page or limit"
            )
        wanted = set(ids)
        if len(wanted) > 100:
            raise ApiError(400, "invalid_request_error", "at most 100 ids")
        return {
            "data": [
                f.metadata(ga=True, fractional=state.quirks.fractional_seconds)
                for f in files
                if f.id in wanted
            ],
            "next_page": None,
        }
    if after or before:
        window, more = around(files, [f.id for f in files], after, before, limit)
    else:
        start = 0
        if ga and one("page"):
            cursor = str(one("page"))
            try:
                seq = int(cursor.removeprefix("page_"))
            except ValueError as exc:
                raise ApiError(400, "invalid_request_error", "invalid page cursor") from exc
            start = next((i for i, f in enumerate(files) if f.seq < seq), len(files))
        window = files[start : start + limit]
        more = start + limit < len(files)
    data = [f.metadata(ga=ga, fractional=state.quirks.fractional_seconds) for f in window]
    out: dict[str, Any] = {"data": data}
    if ga:
        out["next_page"] = f"page_{window[-1].seq}" if more and window else None
    if not ga or agents:
        out.update(
            has_more=more,
            first_id=data[0]["id"] if data else None,
            last_id=data[-1]["id"] if data else None,
        )
    return out

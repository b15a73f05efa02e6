"""Multipart uploads streamed to a temp dir, never held whole in memory.

The raw ASGI body is fed to `multipart.PushMultipartParser` chunk by chunk; each file part is
written to its own numbered folder under the caller's temp dir, as a sanitised basename of the
client's filename (which is untrusted: `../../etc/passwd` becomes `passwd`), so that any message
about the file names it as the client did, never by a temp name. A part's name is its
`filename*` (RFC 5987/2231, UTF-8) when it has one, else its `filename`. The byte count is
checked against the limit from `Content-Length` before reading and again while streaming.

Each request's temp dir (`data_dir/tmp/upload-*`) is removed when the request ends; the ones a
killed server left behind are removed when a server starts (`remove_stale_upload_dirs`), once
nothing in them changed for `STALE_UPLOAD_SECONDS`: a younger one may be a request another
worker (`kb serve --workers N`) is serving right now.
Headers are parsed with the standard library's `email.message`.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from dataclasses import dataclass
from email.message import Message
from email.utils import collapse_rfc2231_value
from pathlib import Path
from typing import IO, Any

import anyio.to_thread
from litestar import Request
from multipart import MultipartError, MultipartSegment, ParserLimitReached, PushMultipartParser

from kb.errors import InvalidInput, TooLarge, UnsupportedType
from kb.files import clean_filename

MAX_FILES = 100
_FLUSH_BYTES = 1024 * 1024
UPLOAD_PREFIX = "upload-"
STALE_UPLOAD_SECONDS = 3600.0  # longer than any upload and its ingest take


def upload_dir(data_dir: Path) -> Path:
    """A new temp dir for one request's files, under `data_dir/tmp`."""
    root = data_dir / "tmp"
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=UPLOAD_PREFIX, dir=root))


def _last_change(directory: Path) -> float:
    """When `directory` or a file in it last changed (a file being streamed keeps changing)."""
    newest = directory.stat().st_mtime
    for entry in directory.iterdir():
        with contextlib.suppress(FileNotFoundError):  # removed meanwhile
            newest = max(newest, entry.stat().st_mtime)
    return newest


def remove_stale_upload_dirs(
    data_dir: Path, older_than: float = STALE_UPLOAD_SECONDS
) -> list[Path]:
    """Remove the temp dirs of requests a killed server never finished: those under
    `data_dir/tmp` in which nothing changed for `older_than` seconds. Returns them."""
    cutoff = time.time() - older_than
    removed = []
    for directory in sorted((data_dir / "tmp").glob(f"{UPLOAD_PREFIX}*")):
        try:
            stale = directory.is_dir() and _last_change(directory) <= cutoff
        except OSError:  # removed meanwhile by the request that made it
            continue
        if stale:
            shutil.rmtree(directory, ignore_errors=True)
            removed.append(directory)
    return removed


@dataclass(frozen=True, slots=True)
class ReceivedFile:
    path: Path  # where the bytes were written (inside the temp dir)
    filename: str  # the safe basename the client's filename was reduced to
    size: int


def safe_basename(filename: str | None, fallback: str = "upload") -> str:
    """The last path component of an untrusted filename, with only harmless characters."""
    return clean_filename(filename, fallback=fallback)


def _header(name: str, value: str) -> Message:
    message = Message()
    message[name] = value
    return message


def multipart_boundary(content_type: str | None) -> str:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media != "multipart/form-data":
        raise UnsupportedType(
            f"expected a multipart/form-data body, got {media or 'no content type'!r}"
        )
    boundary = _header("content-type", content_type or "").get_boundary()
    if not boundary:
        raise InvalidInput("multipart boundary missing in Content-Type")
    return boundary


def part_filename(segment: MultipartSegment) -> str | None:
    """The part's `filename*` (decoded) if it has one, else its `filename`; None for a part
    that is not a file (a form field)."""
    disposition = segment.header("Content-Disposition")
    if disposition is None:
        return None
    params = _header("content-disposition", disposition).get_params(
        header="content-disposition", failobj=[]
    )
    names = [value for key, value in params if key == "filename"]
    encoded = [value for value in names if isinstance(value, tuple)]
    chosen = encoded[0] if encoded else names[0] if names else None
    if chosen is None:
        return None
    return collapse_rfc2231_value(chosen, errors="replace")


def check_declared_length(request: Request[Any, Any, Any], limit: int) -> None:
    raw = request.headers.get("content-length")
    if raw is None:
        return
    try:
        declared = int(raw)
    except ValueError as exc:
        raise InvalidInput(f"invalid Content-Length {raw!r}") from exc
    if declared > limit:
        raise TooLarge(f"upload of {declared} bytes is over the limit of {limit} bytes")


async def receive_files(
    request: Request[Any, Any, Any], directory: Path, limit: int
) -> list[ReceivedFile]:
    """Stream every file part of a multipart request into `directory`."""
    boundary = multipart_boundary(request.headers.get("content-type"))
    check_declared_length(request, limit)
    received: list[ReceivedFile] = []
    out: IO[bytes] | None = None
    current: tuple[Path, str] | None = None
    buffer = bytearray()
    total = 0

    async def flush() -> None:
        if out is not None and buffer:
            await anyio.to_thread.run_sync(out.write, bytes(buffer))
        buffer.clear()

    try:
        with PushMultipartParser(boundary, max_segment_count=MAX_FILES + 20) as parser:
            async for chunk in request.stream():
                total += len(chunk)
                if total > limit:
                    raise TooLarge(f"upload is over the limit of {limit} bytes")
                for event in parser.parse(chunk):
                    if isinstance(event, MultipartSegment):
                        filename = part_filename(event)
                        if not filename:
                            current = None  # a form field, or an empty file input: ignored
                            continue
                        if len(received) >= MAX_FILES:
                            raise InvalidInput(f"at most {MAX_FILES} files per request")
                        name = safe_basename(filename)
                        folder = directory / f"{len(received):03d}"
                        folder.mkdir()
                        path = folder / name
                        out = path.open("wb")
                        current = (path, name)
                    elif event:
                        if out is not None:
                            buffer += event
                            if len(buffer) >= _FLUSH_BYTES:
                                await flush()
                    else:  # end of a part
                        if out is not None and current is not None:
                            await flush()
                            out.close()
                            path, name = current
                            received.append(ReceivedFile(path, name, path.stat().st_size))
                        out, current = None, None
    except ParserLimitReached as exc:
        raise InvalidInput(f"multipart body over a parser limit: {exc}") from exc
    except MultipartError as exc:
        raise InvalidInput(f"invalid multipart body: {exc}") from exc
    finally:
        if out is not None:
            out.close()
    return received

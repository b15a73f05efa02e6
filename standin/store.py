"""State of the stand-in: stored files, faults to inject, and the request log.

Kept apart from the HTTP layer so tests can inspect and seed it directly.
"""

from __future__ import annotations

import io
import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def new_id(prefix: str) -> str:
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(24))


def rfc3339(ts: datetime, fractional: bool = True) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if fractional else "%Y-%m-%dT%H:%M:%SZ")


def sniff_mime(data: bytes) -> str:
    """The type a file is detected as when the upload part declares none."""
    if data.startswith(b"%PDF-"):
        return "application/pdf"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return "application/octet-stream"
    return "text/plain"


@dataclass
class StoredFile:
    id: str
    filename: str
    mime_type: str
    data: bytes
    created_at: datetime
    seq: int
    expires_at: datetime | None = None
    downloadable: bool = False
    _pages: list[str] | None = None

    def metadata(self, *, ga: bool, fractional: bool = True) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "id": self.id,
            "type": "file",
            "filename": self.filename,
            "mime_type": self.mime_type,
            "size_bytes": len(self.data),
            "created_at": rfc3339(self.created_at, fractional),
            "downloadable": self.downloadable,
        }
        if ga:
            meta["expires_at"] = rfc3339(self.expires_at, fractional) if self.expires_at else None
        return meta

    @property
    def expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= datetime.now(UTC)

    def pages(self) -> list[str]:
        """Text per page (PDF) or the whole text as one page (text/plain)."""
        if self._pages is None:
            if self.mime_type == "application/pdf":
                from pypdf import PdfReader

                reader = PdfReader(io.BytesIO(self.data))
                self._pages = [page.extract_text() or "" for page in reader.pages]
            else:
                self._pages = [self.data.decode("utf-8", errors="replace")]
        return self._pages


@dataclass
class Fault:
    """Fail requests whose method and path match, `times` times.

    kind: "status" (answer `status` with an error body and `headers`), "drop" (close the
    connection mid-response), "after_status" / "after_drop" (do the real work first, e.g. store
    the upload, then fail the same way), "html" (a proxy's non-JSON `status` page, no
    request-id), "slow" (wait `delay` seconds, then do the work: a client that timed out meanwhile
    never sees the stored result).
    """

    path: str
    method: str = "POST"
    kind: str = "status"
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    times: int = 1
    error_type: str | None = None
    delay: float = 0.0

    def matches(self, method: str, path: str) -> bool:
        return self.times > 0 and method == self.method and path.startswith(self.path)


@dataclass
class Quirks:
    """Variations the contract allows in what a server sends; defaults are the plain case.

    Clients are tested against each, since other implementations of the contract may differ."""

    missing_file_status: int = 404  # unknown file_id in /v1/messages: 404 or 400 (unconfirmed)
    unknown_model_status: int = 404  # a model not in State.models: 404 `model: <name>`, or 400
    fractional_seconds: bool = True  # created_at/expires_at with or without fractional seconds
    citation_file_id: bool = True  # False: citations carry "file_id": null
    citation_title: bool = True  # False: citations carry "document_title": null
    null_citations: bool = False  # True: uncited text blocks say "citations": null (else absent)
    cache_usage: bool = True  # False: usage has no cache_* fields at all
    stop_reason: str | None = None  # e.g. "refusal": stop there (refusal: no text at all)
    novel_events: bool = False  # pings anywhere, unknown SSE event/block/citation types
    stream_error_after: int | None = None  # SSE: `event: error` (overloaded) after N events
    stream_cut_after: int | None = None  # SSE: the body ends after N events, no message_stop
    error_request_id: bool = True  # False: error bodies carry no request_id


@dataclass
class LoggedRequest:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body_size: int
    json: Any = None
    status: int = 0

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass
class State:
    max_file_bytes: int = 500 * 1024 * 1024
    storage_quota: int = 10 * 1024**4
    max_pdf_pages: int = 100
    max_body_bytes: int = 32 * 1024 * 1024
    max_batch_bytes: int = 256 * 1024 * 1024  # a Message Batches create body (contract §8)
    max_batch_requests: int = 100_000
    batch_pace: int = 1_000_000  # requests a batch processes each time it is looked at
    batch_hold: bool = False  # True: batches stay in_progress, nothing processed
    batch_ttl: float = 24 * 3600.0  # seconds until an unfinished batch ends `expired`
    batches: dict[str, Any] = field(default_factory=dict)  # id -> standin.batches.Batch
    batch_seq: int = 0
    models: set[str] | None = None  # the models /v1/messages knows; None: any name
    files: dict[str, StoredFile] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    log: list[LoggedRequest] = field(default_factory=list)
    cache: set[str] = field(default_factory=set)
    quirks: Quirks = field(default_factory=Quirks)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _seq: int = 0

    def add_file(
        self, filename: str, mime_type: str, data: bytes, *, downloadable: bool = False
    ) -> StoredFile:
        with self.lock:
            self._seq += 1
            stored = StoredFile(
                new_id("file_"),
                filename,
                mime_type,
                data,
                datetime.now(UTC),
                self._seq,
                downloadable=downloadable,
            )
            self.files[stored.id] = stored
            return stored

    def used_bytes(self) -> int:
        return sum(len(f.data) for f in self.files.values())

    def newest_first(self) -> list[StoredFile]:
        return sorted(self.files.values(), key=lambda f: f.seq, reverse=True)

    def take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.matches(method, path):
                    fault.times -= 1
                    return fault
        return None

    def reset(self) -> None:
        with self.lock:
            self.files.clear()
            self.faults.clear()
            self.log.clear()
            self.cache.clear()
            self.batches.clear()
            self.batch_hold = False
            self.quirks = Quirks()

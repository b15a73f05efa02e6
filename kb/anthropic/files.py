"""The Anthropic Files API as a `FileStore`.

Uploads are never retried blindly: the SDK sends no idempotency key, so a timeout or 5xx
after the server stored the file would leave a duplicate. Instead every upload goes out with
`max_retries=0` (other calls keep the SDK's retries), and after a failure the store waits,
lists the remote files (GA `page`/`next_page` pagination, newest first) and looks for the
part's `kb-<name>-<kb id>-<hash>-p<part>-` prefix (`kb.files.remote_filename`) with the same
size and type before sending again; if a retry then succeeds, stray copies from the failed
attempts are deleted.
Matching on the ASCII prefix, not the full name, survives a server that normalises filenames.
The prefix holds the knowledge base's identity, so a file another install uploaded (even one of
the same name, with the same bytes) is never taken for this one's.
A copy stored even later (a very slow server) is unreferenced and `kb files gc` removes it.

Every upload names its type explicitly (document blocks take only `application/pdf` and
`text/plain`; images `image/jpeg|png|gif|webp`): a guessed `text/markdown` or
`application/octet-stream` would be unusable in a Messages request.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING

from kb.anthropic.errors import to_kb_error
from kb.errors import InvalidInput, KBError
from kb.files import PartKey, StoredFile, clean_filename, listed, remote_filename

if TYPE_CHECKING:
    import anthropic

    from kb.settings import Settings

UPLOAD_ATTEMPTS = 3
MAX_NAME = 255
DOCUMENT_TYPES = ("application/pdf", "text/plain")
IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
_ALIASES = {
    "image/jpg": "image/jpeg",
    "image/pjpeg": "image/jpeg",
    "application/x-pdf": "application/pdf",
}
BOM = b"\xef\xbb\xbf"


def upload_mime(mime_type: str, filename: str = "") -> str:
    """The explicit type to upload under: one a Messages block accepts. Any `text/*` (e.g.
    markdown) is sent as `text/plain`; anything else is refused before it is sent."""
    mime = mime_type.split(";")[0].strip().lower()
    mime = _ALIASES.get(mime, mime)
    if mime.startswith("text/"):
        return "text/plain"
    if mime in DOCUMENT_TYPES or mime in IMAGE_TYPES:
        return mime
    raise InvalidInput(
        f"{filename or 'file'}: type {mime_type!r} cannot be attached to a question "
        "(only PDF, plain text and JPEG/PNG/GIF/WebP images can)"
    )


def safe_name(kb_name: str, kb_id: str, doc_id: str, part: PartKey, filename: str) -> str:
    """The remote name: prefix (`remote_filename`) + basename, 1-255 characters, none of the
    forbidden `<>:"|?*\\/` or control characters. A long name keeps its extension."""
    prefix = remote_filename(kb_name, kb_id, doc_id, part, "")
    return prefix + clean_filename(filename, limit=MAX_NAME - len(prefix))


def _retryable(exc: Exception) -> bool:
    import anthropic

    if isinstance(exc, anthropic.APIConnectionError):
        return True
    return isinstance(exc, anthropic.APIStatusError) and exc.status_code >= 500


def _same_type(a: str, b: str) -> bool:
    return a.split(";")[0].strip().lower() == b.split(";")[0].strip().lower()


class AnthropicFileStore:
    name = "anthropic"
    backoff = 0.5  # seconds before the first reconciliation; doubles per failed attempt

    def __init__(self, client: anthropic.Anthropic, settings: Settings, kb_id: str) -> None:
        self._client = client
        self._settings = settings
        self._kb_id = kb_id  # the knowledge base's identity (`kb.index.Index.kb_id`)
        self._known: list[StoredFile] | None = None  # remote listing, newest first
        self._lock = threading.Lock()  # ingest uploads from a thread pool

    def _matches(self, key: str, size: int, mime: str) -> list[StoredFile]:
        """Remote copies of one part (newest first), from the listing read once per store."""
        with self._lock:
            if self._known is None:
                self._known = list(self.list())
            known = list(self._known)
        return [
            f
            for f in known
            if f.filename.startswith(key) and f.size_bytes == size and _same_type(f.mime_type, mime)
        ]

    def _earlier(self, key: str, size: int, mime: str) -> str | None:
        """An earlier upload of the same part (e.g. by a crashed run), still present remotely:
        confirmed with a metadata GET (it may have been deleted or have expired)."""
        for stored in self._matches(key, size, mime):
            if self.exists(stored.file_id):
                return stored.file_id
            self._forget(stored.file_id)
        return None

    def upload(self, doc_id: str, part: PartKey, filename: str, mime_type: str, data: bytes) -> str:
        name = safe_name(self._settings.kb_name, self._kb_id, doc_id, part, filename)
        mime = upload_mime(mime_type, filename)
        if mime == "text/plain":  # Claude's char offsets then match kb's extracted text
            data = data.removeprefix(BOM)
        key = remote_filename(self._settings.kb_name, self._kb_id, doc_id, part, "")
        earlier = self._earlier(key, len(data), mime)
        if earlier:
            return earlier
        uploader = self._client.with_options(
            max_retries=0, timeout=self._settings.upload_timeout
        ).files
        last: Exception | None = None
        for attempt in range(UPLOAD_ATTEMPTS):
            try:
                file_id = uploader.upload(file=(name, data, mime)).id
            except Exception as exc:
                if not _retryable(exc):
                    raise to_kb_error(exc, f"Uploading {filename}") from exc
                last = exc
                time.sleep(self.backoff * 2**attempt)  # a slow server may still be storing it
                found = self.find(key, len(data), mime)
                if found:
                    return found
                continue
            if last is not None:
                self._drop_strays(key, len(data), mime, file_id)
            self._remember(StoredFile(file_id, name, mime, len(data)))
            return file_id
        assert last is not None
        raise to_kb_error(last, f"Uploading {filename}") from last

    def _drop_strays(self, key: str, size: int, mime: str, keep: str) -> None:
        """After a retried upload: delete copies the failed attempts left after all."""
        self._known = None
        for stray in self._matches(key, size, mime):
            if stray.file_id != keep:
                self.delete(stray.file_id)

    def _remember(self, stored: StoredFile) -> None:
        with self._lock:
            if self._known is not None:
                self._known.insert(0, stored)

    def _forget(self, file_id: str) -> None:
        with self._lock:
            if self._known is not None:
                self._known = [f for f in self._known if f.file_id != file_id]

    def find(self, key: str, size: int | None = None, mime: str | None = None) -> str | None:
        """The newest remote file whose name starts with `key` (and of `size` and `mime`), read
        from a fresh listing; the store's cached listing is refreshed with it."""
        listing = list(self.list())
        with self._lock:
            self._known = listing
        for stored in listing:
            if not stored.filename.startswith(key):
                continue
            if size is not None and stored.size_bytes != size:
                continue
            if mime is None or _same_type(stored.mime_type, mime):
                return stored.file_id
        return None

    def exists(self, file_id: str) -> bool:
        import anthropic

        try:
            meta = self._client.files.retrieve_metadata(file_id)
        except anthropic.NotFoundError:
            return False
        except Exception as exc:
            raise to_kb_error(exc, "Reading file metadata") from exc
        expires = getattr(meta, "expires_at", None)
        return not isinstance(expires, datetime) or expires.timestamp() > time.time()

    def delete(self, file_id: str) -> None:
        import anthropic

        self._forget(file_id)
        try:
            self._client.files.delete(file_id)
        except anthropic.NotFoundError:
            return
        except Exception as exc:
            raise to_kb_error(exc, f"Deleting {file_id}") from exc

    def collect_leftovers(self, grace: float, *, dry_run: bool = False) -> list[str]:
        """None: the Files API stores an upload whole or not at all, and lists what it stores."""
        return []

    def list(self) -> Iterator[StoredFile]:
        """This knowledge base's files, newest first, across every page (GA `page`/`next_page`),
        and those named as before identities (`kb.files.listed`); files of other knowledge
        bases and other installs in the workspace are never listed, so never collected."""
        kb_name = self._settings.kb_name
        try:
            for meta in self._client.files.list(limit=1000):
                filename = getattr(meta, "filename", None)
                if not isinstance(filename, str) or not listed(kb_name, self._kb_id, filename):
                    continue
                created = getattr(meta, "created_at", None)
                yield StoredFile(
                    meta.id,
                    filename,
                    str(getattr(meta, "mime_type", None) or ""),
                    int(getattr(meta, "size_bytes", None) or 0),
                    created.isoformat() if isinstance(created, datetime) else str(created or ""),
                )
        except KBError:
            raise
        except Exception as exc:
            raise to_kb_error(exc, "Listing files") from exc

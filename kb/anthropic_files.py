"""The Anthropic Files API as a `FileStore`, the client factory, and the one place where
SDK errors become `kb.errors`.

Uploads are never retried blindly: the SDK sends no idempotency key, so a timeout or 5xx
after the server stored the file would leave a duplicate. Instead every upload goes out with
`max_retries=0`, and after a failure the store lists the remote files and looks for the
hash-prefixed name (`kb.files.remote_filename`) before sending again.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from kb.errors import (
    InvalidInput,
    KBError,
    NotFound,
    RateLimited,
    TooLarge,
    Unauthorized,
    UpstreamError,
    UpstreamTimeout,
)
from kb.files import StoredFile, remote_filename

if TYPE_CHECKING:
    import anthropic

    from kb.settings import Settings

PREFIX = "kb-"
UPLOAD_ATTEMPTS = 3
_FORBIDDEN = re.compile(r'[<>:"|?*\\/\x00-\x1f]')


def make_client(settings: Settings) -> anthropic.Anthropic:
    """An SDK client for `settings`: explicit key and base URL, bounded timeouts."""
    import anthropic

    if not settings.anthropic_api_key:
        from kb.errors import ConfigError

        raise ConfigError("ANTHROPIC_API_KEY is not set")
    return anthropic.Anthropic(
        api_key=settings.anthropic_api_key,
        base_url=settings.anthropic_base_url or None,
        timeout=anthropic.Timeout(300.0, connect=10.0),
        max_retries=2,
    )


def _retry_hint(exc: Any) -> str | None:
    headers = getattr(getattr(exc, "response", None), "headers", None) or {}
    if ms := headers.get("retry-after-ms"):
        return f"retry after {float(ms) / 1000:g} s"
    if seconds := headers.get("retry-after"):
        return f"retry after {seconds} s"
    return None


def to_kb_error(exc: Exception, what: str = "Anthropic request") -> KBError:
    """Map an SDK exception (or anything raised while talking to Anthropic) to `kb.errors`."""
    import anthropic

    if isinstance(exc, KBError):
        return exc
    if isinstance(exc, anthropic.APITimeoutError):
        return UpstreamTimeout(f"{what} timed out")
    if isinstance(exc, anthropic.APIConnectionError):
        return UpstreamError(f"{what} failed: could not reach the Anthropic API ({exc})")
    if not isinstance(exc, anthropic.APIStatusError):
        return UpstreamError(f"{what} failed: {exc}")
    status = exc.status_code
    body = exc.body if isinstance(exc.body, dict) else {}
    raw_error = body.get("error")
    error: dict[str, Any] = raw_error if isinstance(raw_error, dict) else {}
    message = str(error.get("message") or exc.message)
    rid = f" (request {exc.request_id})" if getattr(exc, "request_id", None) else ""
    detail = f"{what} failed: {message}{rid}"
    if status == 401:
        return Unauthorized("Anthropic rejected the API key", hint=message)
    if status == 403:
        return Unauthorized(f"{what} not permitted for this API key: {message}")
    if status == 404:
        return NotFound(detail)
    if status == 413 or (status == 400 and "storage_quota" in str(error.get("details", ""))):
        return TooLarge(detail)
    if status in (429, 529):
        kind = "rate limited" if status == 429 else "overloaded"
        return RateLimited(f"{what} failed: Anthropic is {kind}{rid}", hint=_retry_hint(exc))
    if status == 504:
        return UpstreamTimeout(detail)
    if status >= 500:
        return UpstreamError(detail)
    if 400 <= status < 500:
        return InvalidInput(detail)
    return UpstreamError(detail)


def safe_name(doc_id: str, part: int, filename: str) -> str:
    """The remote name: hash prefix + basename, without characters the API rejects."""
    base = re.split(r"[\\/]", filename)[-1] or "file"
    return remote_filename(doc_id, part, _FORBIDDEN.sub("_", base))[:255]


def _retryable(exc: Exception) -> bool:
    import anthropic

    if isinstance(exc, anthropic.APIConnectionError):
        return True
    return isinstance(exc, anthropic.APIStatusError) and exc.status_code >= 500


class AnthropicFileStore:
    name = "anthropic"

    def __init__(self, client: anthropic.Anthropic, settings: Settings) -> None:
        self._client = client
        self._settings = settings
        self._known: dict[str, tuple[str, int]] | None = None  # remote name -> (id, size)
        self._lock = threading.Lock()  # ingest uploads from a thread pool

    def _earlier(self, name: str, size: int) -> str | None:
        """An earlier upload of the same part (e.g. by a crashed run), still present remotely.
        The remote listing is read once per store; a hit is confirmed with a metadata GET."""
        with self._lock:
            if self._known is None:
                known = {}
                for stored in reversed(list(self.list())):  # newest wins
                    known[stored.filename] = (stored.file_id, stored.size_bytes)
                self._known = known
            hit = self._known.get(name)
        if hit and hit[1] == size and self.exists(hit[0]):
            return hit[0]
        with self._lock:
            self._known.pop(name, None)
        return None

    def upload(self, doc_id: str, part: int, filename: str, mime_type: str, data: bytes) -> str:
        name = safe_name(doc_id, part, filename)
        uploader = self._client.with_options(
            max_retries=0, timeout=self._settings.upload_timeout
        ).files
        earlier = self._earlier(name, len(data))
        if earlier:
            return earlier
        last: Exception | None = None
        for attempt in range(UPLOAD_ATTEMPTS):
            if attempt:
                time.sleep(min(0.5 * 2 ** (attempt - 1), 4.0))
            try:
                file_id = uploader.upload(file=(name, data, mime_type)).id
                self._remember(name, file_id, len(data))
                return file_id
            except Exception as exc:
                if not _retryable(exc):
                    raise to_kb_error(exc, f"Uploading {filename}") from exc
                last = exc
            found = self.find(name, len(data))  # the failed attempt may have been stored
            if found:
                self._remember(name, found, len(data))
                return found
        assert last is not None
        raise to_kb_error(last, f"Uploading {filename}") from last

    def _remember(self, name: str, file_id: str, size: int) -> None:
        if self._known is not None:
            self._known[name] = (file_id, size)

    def find(self, name: str, size: int | None = None) -> str | None:
        """The newest remote file stored under `name` (and of `size`), if any."""
        for stored in self.list():
            if stored.filename == name and (size is None or stored.size_bytes == size):
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
        return expires is None or expires.timestamp() > time.time()

    def delete(self, file_id: str) -> None:
        import anthropic

        if self._known:
            self._known = {k: v for k, v in self._known.items() if v[0] != file_id}
        try:
            self._client.files.delete(file_id)
        except anthropic.NotFoundError:
            return
        except Exception as exc:
            raise to_kb_error(exc, f"Deleting {file_id}") from exc

    def list(self) -> Iterator[StoredFile]:
        try:
            for meta in self._client.files.list(limit=1000):
                if meta.filename.startswith(PREFIX):
                    yield StoredFile(
                        meta.id,
                        meta.filename,
                        meta.mime_type,
                        meta.size_bytes,
                        meta.created_at.isoformat() if meta.created_at else "",
                    )
        except KBError:
            raise
        except Exception as exc:
            raise to_kb_error(exc, "Listing files") from exc

"""File stores: where originals go so that Claude can be sent a `file_id` instead of bytes.

`FileStore` is the narrow protocol; `LocalFileStore` is the offline default (content-addressed
copies under the data dir). The Anthropic Files API implementation lives in
`kb/anthropic/files.py` and slots in unchanged.
"""

from __future__ import annotations

import os
import re
import tempfile
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from kb.errors import NotFound

PartKey = int | str
NAME_BYTES = 150  # a cleaned file name's length in UTF-8 bytes: file systems allow 255
_UNSAFE = re.compile(r"[^\w.\-+() ]+")


def clean_filename(name: str | None, *, limit: int = NAME_BYTES, fallback: str = "file") -> str:
    """The last path component of an untrusted file name, with only harmless characters
    (letters, digits, `.-+()`, spaces; each run of others becomes `_`), at most `limit` UTF-8
    bytes with its extension kept; `fallback` when nothing is left. `../../etc/passwd` becomes
    `passwd`."""
    name = unicodedata.normalize("NFC", name or "").replace("\\", "/").split("/")[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = _UNSAFE.sub("_", name).strip(" .")
    if not name or set(name) <= {"_", "."}:
        return fallback
    if len(name.encode()) <= limit:
        return name
    stem, dot, ext = name.rpartition(".")
    ext = dot + ext if stem and len(ext.encode()) <= 16 else ""
    room = limit - len(ext.encode())
    return name.encode()[:room].decode(errors="ignore") + ext


@dataclass(frozen=True, slots=True)
class StoredFile:
    file_id: str
    filename: str
    mime_type: str
    size_bytes: int
    created_at: str = ""


def remote_filename(kb_name: str, doc_id: str, part: PartKey, name: str) -> str:
    """The name a part is stored under: the knowledge base and a content-hash prefix, which
    find retried uploads and keep knowledge bases sharing one workspace apart. `part` is the
    part's index, or for PDFs its page range (`3-12`), so a re-cut document never takes an
    old part's file for a new one."""
    return f"kb-{kb_name}-{doc_id[:32]}-p{part}-{name}"


def owns(kb_name: str, filename: str) -> bool:
    """True for the names `remote_filename` gives this knowledge base's files."""
    pattern = rf"kb-{re.escape(kb_name)}-[0-9a-f]{{32}}-p\d+(-\d+)?-"
    return re.match(pattern, filename) is not None


class FileStore(Protocol):
    name: str  # "local" or "anthropic"

    def upload(self, doc_id: str, part: PartKey, filename: str, mime_type: str, data: bytes) -> str:
        """Store one part and return its file_id. Idempotent: an earlier (possibly crashed)
        upload of the same doc_id/part is found and its id returned instead of a second copy."""
        ...

    def exists(self, file_id: str) -> bool: ...

    def delete(self, file_id: str) -> None:
        """Remove a file; a file that is already gone is not an error."""
        ...

    def list(self) -> Iterator[StoredFile]:
        """Every file this store holds under kb's prefix."""
        ...


def _write_atomically(target: Path, data: bytes) -> None:
    """`target` holds all of `data` or stays as it was: written under a temp name of its own
    (two processes storing one part never share one), then renamed."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read_meta(meta: Path) -> tuple[str, str]:
    """(remote name, type) from a `.meta` file; blanks when it is missing or unreadable (a
    crash between a file and its `.meta`), so listing and gc go on."""
    try:
        lines = meta.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return "", ""
    filename, mime_type = [*lines, "", ""][:2]
    return filename, mime_type


class LocalFileStore:
    """The offline default: parts are kept as files under the data dir; ids are `local-...`.
    Each has a `.meta` beside it (remote name, type), written after the file: a file whose
    `.meta` is missing or broken is listed with blanks, and its next upload writes it again."""

    name = "local"

    def __init__(self, root: Path, kb_name: str) -> None:
        self.root = root / kb_name
        self.kb_name = kb_name

    def _path(self, file_id: str) -> Path:
        if not file_id.startswith("local-") or "/" in file_id or ".." in file_id:
            raise NotFound(f"file {file_id} is not a local file")
        return self.root / file_id

    def upload(self, doc_id: str, part: PartKey, filename: str, mime_type: str, data: bytes) -> str:
        file_id = f"local-{doc_id[:32]}-p{part}"
        path = self._path(file_id)
        meta = path.with_suffix(".meta")
        if not path.is_file():
            self.root.mkdir(parents=True, exist_ok=True)
            _write_atomically(path, data)
        if not meta.is_file():
            name = remote_filename(self.kb_name, doc_id, part, filename)
            _write_atomically(meta, f"{name}\n{mime_type}\n".encode())
        return file_id

    def exists(self, file_id: str) -> bool:
        return self._path(file_id).is_file()

    def delete(self, file_id: str) -> None:
        path = self._path(file_id)
        path.unlink(missing_ok=True)
        path.with_suffix(".meta").unlink(missing_ok=True)

    def list(self) -> Iterator[StoredFile]:
        if not self.root.is_dir():
            return
        for path in sorted(self.root.glob("local-*")):
            if path.suffix:
                continue
            try:
                size = path.stat().st_size
            except FileNotFoundError:  # deleted meanwhile (a gc in another process)
                continue
            filename, mime_type = _read_meta(path.with_suffix(".meta"))
            yield StoredFile(path.name, filename, mime_type, size)

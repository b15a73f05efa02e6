"""File stores: where originals go so that Claude can be sent a `file_id` instead of bytes.

`FileStore` is the narrow protocol; `LocalFileStore` is the offline default (content-addressed
copies under the data dir). The Anthropic Files API implementation lives in
`kb/anthropic/files.py` and slots in unchanged.

Every stored name carries the knowledge base's name and identity (`remote_filename`): a store
lists, reuses and collects only its own knowledge base's files, even in an Anthropic workspace
shared by installs that all have the same name.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
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
    created_at: str = ""  # ISO 8601; "" when the store does not say


KB_ID = re.compile(r"[0-9a-f]{16}")  # a knowledge base's identity (`kb.index.new_kb_id`)


def remote_filename(kb_name: str, kb_id: str, doc_id: str, part: PartKey, name: str) -> str:
    """The name a part is stored under: the knowledge base's name and identity, then a
    content-hash prefix, which finds retried uploads. The identity (random, kept in Chroma) keeps
    installs apart that share a workspace and a name (every install is `default` unless set).
    `part` is the part's index, or for PDFs its page range (`3-12`), so a re-cut document never
    takes an old part's file for a new one."""
    return f"kb-{kb_name}-{kb_id}-{doc_id[:32]}-p{part}-{name}"


_PART = r"[0-9a-f]{32}-p\d+(-\d+)?-"


def owns(kb_name: str, kb_id: str, filename: str) -> bool:
    """True for the names `remote_filename` gives this knowledge base's files: only these are
    ever reused or collected."""
    pattern = rf"kb-{re.escape(kb_name)}-{re.escape(kb_id)}-{_PART}"
    return re.match(pattern, filename) is not None


def named_before_ids(kb_name: str, filename: str) -> bool:
    """True for the names earlier versions gave (`kb-<name>-<hash>-p<part>-`, no identity). Any
    install with this name may have made such a file, so kb keeps using the ones its records
    reference and never collects the others."""
    return re.match(rf"kb-{re.escape(kb_name)}-{_PART}", filename) is not None


def listed(kb_name: str, kb_id: str, filename: str) -> bool:
    """True for the files a store lists: its knowledge base's own, and those named as before
    identities."""
    return owns(kb_name, kb_id, filename) or named_before_ids(kb_name, filename)


def age_seconds(stored: StoredFile, now: float | None = None) -> float | None:
    """How long ago `stored` was created, or None when the store did not say (or said it
    unreadably): such a file counts as new."""
    try:
        created = datetime.fromisoformat(stored.created_at)
    except ValueError:
        return None
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    return (time.time() if now is None else now) - created.timestamp()


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

    def collect_leftovers(self, grace: float, *, dry_run: bool = False) -> list[str]:
        """What a write or delete cut short by a crash left in the store (never anyone's file),
        unchanged for `grace` seconds; deleted unless `dry_run`. Returns their names."""
        ...

    def list(self) -> Iterator[StoredFile]:
        """This knowledge base's files (`owns`), and files named as before identities
        (`named_before_ids`): `listed`. Never another install's."""
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
    """The offline default: parts are kept as files under the data dir; ids are
    `local-<kb id>-<hash>-p<part>` (earlier versions': `local-<hash>-p<part>`, still read). Each
    file's `.meta` holds the name `remote_filename` gives it, which says whose it is; it is
    written first, and a file whose `.meta` cannot be read is not listed (not anyone's to
    collect) until its next upload writes the `.meta` again. Both are written under a temp
    name and renamed; what a process killed meanwhile leaves (a temp file, a `.meta` without
    its file) is collected as leftovers."""

    name = "local"

    def __init__(self, root: Path, kb_name: str, kb_id: str) -> None:
        self.root = root / kb_name
        self.kb_name = kb_name
        self.kb_id = kb_id

    def _path(self, file_id: str) -> Path:
        if not file_id.startswith("local-") or "/" in file_id or ".." in file_id:
            raise NotFound(f"file {file_id} is not a local file")
        return self.root / file_id

    def upload(self, doc_id: str, part: PartKey, filename: str, mime_type: str, data: bytes) -> str:
        file_id = f"local-{self.kb_id}-{doc_id[:32]}-p{part}"
        path = self._path(file_id)
        meta = path.with_suffix(".meta")
        self.root.mkdir(parents=True, exist_ok=True)
        if not _read_meta(meta)[0]:  # before the file: a stored file always says whose it is
            name = remote_filename(self.kb_name, self.kb_id, doc_id, part, filename)
            _write_atomically(meta, f"{name}\n{mime_type}\n".encode())
        if path.is_file():
            path.touch()  # reused: new again, so gc's grace period covers it until committed
        else:
            _write_atomically(path, data)
        return file_id

    def exists(self, file_id: str) -> bool:
        return self._path(file_id).is_file()

    def delete(self, file_id: str) -> None:
        path = self._path(file_id)
        path.unlink(missing_ok=True)
        path.with_suffix(".meta").unlink(missing_ok=True)

    def collect_leftovers(self, grace: float, *, dry_run: bool = False) -> list[str]:
        """Temp files (a write cut short) and `.meta` files without their file (an upload or a
        delete cut short) unchanged for `grace` seconds, oldest first; deleted unless
        `dry_run`. A write in flight is younger: its `.meta` is written just before its file."""
        cutoff = time.time() - grace
        found: list[tuple[float, Path]] = []
        for path in [*self.root.glob(".tmp-*"), *self.root.glob("local-*.meta")]:
            try:
                changed = path.stat().st_mtime
            except FileNotFoundError:  # renamed or removed meanwhile
                continue
            if changed <= cutoff and (path.suffix != ".meta" or not path.with_suffix("").exists()):
                found.append((changed, path))
        found.sort()
        if not dry_run:
            for _, path in found:
                if path.suffix != ".meta" or not path.with_suffix("").exists():  # not written since
                    path.unlink(missing_ok=True)
        return [path.name for _, path in found]

    def list(self) -> Iterator[StoredFile]:
        if not self.root.is_dir():
            return
        for path in sorted(self.root.glob("local-*")):
            if path.suffix:
                continue
            filename, mime_type = _read_meta(path.with_suffix(".meta"))
            if not listed(self.kb_name, self.kb_id, filename):
                continue  # another identity's (a knowledge base since rebuilt), or unreadable
            try:
                stat = path.stat()
            except FileNotFoundError:  # deleted meanwhile (a gc in another process)
                continue
            created = datetime.fromtimestamp(stat.st_mtime, UTC).isoformat()
            yield StoredFile(path.name, filename, mime_type, stat.st_size, created)

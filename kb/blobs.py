"""Content-addressed copies of every original, so a file can be re-uploaded or split later.

An ingest keeps its copy before it commits the record, so a killed ingest leaves copies that
no document uses; `BlobStore.collect` removes them once they are `GC_GRACE_SECONDS` old (a
copy an ingest in flight stored or found a moment ago is younger than that), with the temp
files of copies a crash cut short.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import tempfile
import time
from collections.abc import Container
from pathlib import Path

from kb.errors import NotFound

_CHUNK = 1 << 20
GC_GRACE_SECONDS = 3600.0  # how old an unreferenced copy or a temp file is before gc takes it
_BLOB = re.compile(r"[0-9a-f]{64}")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, doc_id: str) -> Path:
        return self.root / doc_id[:2] / doc_id

    def has(self, doc_id: str) -> bool:
        return self.path(doc_id).is_file()

    def put_file(self, src: Path, doc_id: str | None = None) -> str:
        """Copy `src` in (atomically) and return its sha256; a blob already there is kept."""
        doc_id = doc_id or sha256_file(src)
        dest = self.path(doc_id)
        if dest.is_file():
            with contextlib.suppress(OSError):  # in use again: gc's grace counts from now
                os.utime(dest)
            return doc_id
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as out, src.open("rb") as fh:
                shutil.copyfileobj(fh, out, _CHUNK)
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return doc_id

    def read(self, doc_id: str) -> bytes:
        try:
            return self.path(doc_id).read_bytes()
        except FileNotFoundError:
            raise NotFound(f"no local copy of document {doc_id}") from None

    def delete(self, doc_id: str) -> None:
        self.path(doc_id).unlink(missing_ok=True)

    def collect(
        self, keep: Container[str], *, grace: float = GC_GRACE_SECONDS, dry_run: bool = False
    ) -> list[str]:
        """Copies whose document id is not in `keep`, and temp files, unchanged for `grace`
        seconds; deleted unless `dry_run`. Returns their names (document ids), oldest first.
        Files this store did not make are left alone."""
        cutoff = time.time() - grace
        found: list[tuple[float, str, Path]] = []
        for path in self.root.glob("*/*"):
            name = path.name
            if not (name.startswith(".tmp-") or (_BLOB.fullmatch(name) and name not in keep)):
                continue
            try:
                changed = path.stat().st_mtime
            except FileNotFoundError:  # deleted meanwhile
                continue
            if changed <= cutoff and path.is_file():
                found.append((changed, name, path))
        found.sort()
        if not dry_run:
            for _, _, path in found:
                with contextlib.suppress(FileNotFoundError):
                    if path.stat().st_mtime <= cutoff:  # not taken up again meanwhile
                        path.unlink()
        return [name for _, name, _ in found]

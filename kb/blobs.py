"""Content-addressed copies of every original, so a file can be re-uploaded or split later."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from kb.errors import NotFound

_CHUNK = 1 << 20


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

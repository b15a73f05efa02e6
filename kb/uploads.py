"""Putting a document's original into the configured file store, part by part."""

from __future__ import annotations

import dataclasses
import re
from pathlib import PurePath

from kb.blobs import BlobStore
from kb.files import FileStore
from kb.pdf import part_bytes
from kb.types import Document, RemoteFile

_UNSAFE = re.compile(r'[<>:"|?*\\/\x00-\x1f]+')


def part_filename(doc: Document, index: int) -> str:
    """A safe remote name: the source's base name, with the page range for split PDFs."""
    name = PurePath(doc.source.removeprefix("upload:")).name or doc.id[:12]
    name = _UNSAFE.sub("_", name)[:150]
    if len(doc.parts) > 1:
        part = doc.parts[index]
        stem, dot, ext = name.rpartition(".")
        name = f"{stem or ext}-pages-{part.page_start}-{part.page_end}{dot}{ext if stem else ''}"
    return name


def upload_document(files: FileStore, blobs: BlobStore, doc: Document) -> Document:
    """Upload every part of `doc`; the caller commits the returned record."""
    data = blobs.read(doc.id)
    remote = []
    for part in doc.parts:
        payload = data
        if doc.kind == "pdf":
            payload = part_bytes(data, part, page_count=doc.page_count, encrypted=doc.encrypted)
        file_id = files.upload(
            doc.id, part.index, part_filename(doc, part.index), doc.mime_type, payload
        )
        remote.append(RemoteFile(file_id, part.index, part.page_start, part.page_end))
    return dataclasses.replace(doc, files=tuple(remote), file_store=files.name)

"""Putting a document's original into the configured file store, window by window.

A long PDF is stored as page windows (`kb.pdf.plan_windows`), each its own file named by its
page range. A knowledge base ingested with longer parts (the 100-page parts of earlier versions,
or a larger `KB_PDF_WINDOW_PAGES`) moves to the current windows with `move_to_windows`: the
chunks keep their original page numbers, so nothing is embedded again.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import PurePath
from typing import TYPE_CHECKING

from kb.blobs import BlobStore
from kb.errors import NotFound
from kb.files import FileStore, PartKey
from kb.pdf import open_pdf, part_bytes, plan_windows
from kb.types import DocKind, Document, Part, RemoteFile

if TYPE_CHECKING:
    from kb.service import KnowledgeBase
    from kb.settings import Settings

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


def part_key(doc: Document, part: Part) -> PartKey:
    """What names a part's stored file: its page range for PDFs, its index otherwise."""
    return f"{part.page_start}-{part.page_end}" if doc.kind == "pdf" else part.index


def upload_document(files: FileStore, blobs: BlobStore, doc: Document) -> Document:
    """Upload every part of `doc`; the caller commits the returned record."""
    data = blobs.read(doc.id)
    reader = open_pdf(data)[0] if doc.kind == "pdf" and len(doc.parts) > 1 else None
    remote = []
    for part in doc.parts:
        payload = data
        if doc.kind == "pdf":
            payload = part_bytes(
                data, part, page_count=doc.page_count, encrypted=doc.encrypted, reader=reader
            )
        file_id = files.upload(
            doc.id, part_key(doc, part), part_filename(doc, part.index), doc.mime_type, payload
        )
        remote.append(RemoteFile(file_id, part.index, part.page_start, part.page_end))
    return dataclasses.replace(doc, files=tuple(remote), file_store=files.name)


def plan_parts(kind: DocKind, page_count: int, data: bytes, settings: Settings) -> tuple[Part, ...]:
    """The parts a document is stored as under `settings`: page windows for a PDF."""
    if kind != "pdf":
        return (Part(0, 1, max(page_count, 1)),)
    return plan_windows(data, page_count, settings.pdf_window_pages, settings.pdf_part_max_bytes)


def needs_windows(doc: Document, settings: Settings) -> bool:
    """True for a PDF stored in parts longer than a window (an older or larger cut)."""
    return doc.kind == "pdf" and any(
        p.page_end - p.page_start + 1 > settings.pdf_window_pages for p in doc.parts
    )


def move_to_windows(kb: KnowledgeBase, doc: Document) -> Document:
    """Re-cut a stored PDF into the current page windows: upload the windows, commit the
    record (read afresh, so sources added meanwhile stay), then delete the old parts' files.
    No chunk is touched: chunks carry original page numbers, which map onto any windows."""
    data = kb.blobs.read(doc.id)
    windowed = dataclasses.replace(
        doc, parts=plan_parts(doc.kind, doc.page_count, data, kb.settings), files=()
    )
    uploaded = upload_document(kb.files, kb.blobs, windowed)
    current = kb.index.get(doc.id)
    if current is None:  # removed meanwhile: its new files are nobody's
        _delete(kb, [f.file_id for f in uploaded.files])
        raise NotFound(f"document {doc.id} was removed while its windows were uploaded")
    new = dataclasses.replace(
        current, parts=uploaded.parts, files=uploaded.files, file_store=uploaded.file_store
    )
    kb.index.commit(new)
    kept = {f.file_id for f in new.files}
    if current.file_store == kb.files.name:
        _delete(kb, [f.file_id for f in current.files if f.file_id not in kept])
    return new


def _delete(kb: KnowledgeBase, file_ids: list[str]) -> None:
    for file_id in file_ids:
        kb.files.delete(file_id)

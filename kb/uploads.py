"""Putting a document's original into the configured file store, window by window.

A long PDF is stored as page windows (`kb.pdf.plan_windows`), each its own file named by its
page range. A knowledge base ingested with longer parts (the 100-page parts of earlier versions,
or a larger `KB_PDF_WINDOW_PAGES`) moves to the current windows with `Uploads.in_windows`: the
chunks keep their original page numbers, so nothing is embedded again. `Uploads` is the one
place where files are uploaded again, synced and collected.

Collecting is careful on three counts. Only files named with this knowledge base's identity are
candidates: a file named as before identities (`kb.files.named_before_ids`) may be another
install's, so it is kept (and reported) unless deleted with the record that uses it. A file
younger than `gc_grace_seconds` is kept (and reported): an ingest uploads a document's files
before it commits the record that references them. And the store is listed before the records
are read, so a record committed meanwhile still protects its files. It also takes what writes
cut short by a crash (a killed ingest's) left in the store, once as old (`collect_leftovers`).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kb.blobs import BlobStore
from kb.claims import Claims
from kb.errors import KBError, NotFound
from kb.files import FileStore, PartKey, StoredFile, age_seconds, clean_filename, owns
from kb.pdf import open_pdf, part_bytes, plan_windows
from kb.types import DocKind, Document, Part, RemoteFile

if TYPE_CHECKING:
    from kb.index import Index
    from kb.settings import Settings


def part_filename(doc: Document, index: int) -> str:
    """A safe remote name: the source's base name, with the page range for split PDFs."""
    name = clean_filename(doc.source.removeprefix("upload:"), fallback=doc.id[:12])
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


@dataclass(frozen=True, slots=True)
class Garbage:
    """What a collection found among the unreferenced files."""

    deleted: list[StoredFile] = field(default_factory=list)  # or, when dry, to be deleted
    too_new: list[StoredFile] = field(default_factory=list)  # within the grace period
    old_names: list[StoredFile] = field(default_factory=list)  # named before identities
    leftovers: list[str] = field(default_factory=list)  # of writes a crash cut short
    grace_seconds: float = 0.0
    dry_run: bool = False


class Uploads:
    """The documents' stored files kept in step with their records: what is missing is
    uploaded, a long PDF moves to the current windows, and a record is committed only once its
    files exist (read afresh first, so sources another writer added meanwhile are kept)."""

    def __init__(self, settings: Settings, index: Index, blobs: BlobStore, files: FileStore):
        self.settings = settings
        self.index = index
        self.blobs = blobs
        self.files = files

    def upload(self, doc: Document) -> Document:
        """Upload every part of `doc`; the caller commits the returned record. Each part is
        claimed first (`ClaimedStore`), so concurrent ingests store one content once."""
        claimed = ClaimedStore(self.files, self.index.claims, self.settings.kb_name)
        return upload_document(claimed, self.blobs, doc)

    def in_windows(self, doc: Document) -> Document:
        """`doc` in the current page windows: a PDF stored in longer parts (an earlier
        version's 100-page parts) is cut again and its old files deleted. No chunk is touched:
        chunks carry original page numbers, which map onto any windows."""
        if not needs_windows(doc, self.settings):
            return doc
        parts = plan_parts(doc.kind, doc.page_count, self.blobs.read(doc.id), self.settings)
        return self.reupload(dataclasses.replace(doc, parts=parts))

    def ensure_uploaded(self, doc: Document) -> Document:
        """`doc` with a file in the current store for every part (uploaded now if not)."""
        if doc.file_store == self.files.name and len(doc.files) == len(doc.parts):
            return doc
        return self.reupload(doc)

    def reupload(self, doc: Document) -> Document:
        """Upload `doc`'s parts, commit the record, then delete the files it no longer uses.
        Raises NotFound when the document was removed meanwhile (its new files are deleted)."""
        uploaded = self.upload(dataclasses.replace(doc, files=()))
        with self.index.claim(doc.id):  # the record as it is now, not as `doc` was read
            current = self.index.get(doc.id)
            if current is None:
                self.index.new_epoch(doc.id)  # its files go: a writer that took them re-uploads
                self._delete(f.file_id for f in uploaded.files)
                raise NotFound(f"document {doc.id} was removed while its files were uploaded")
            new = dataclasses.replace(
                current, parts=uploaded.parts, files=uploaded.files, file_store=uploaded.file_store
            )
            self.index.commit(new)
            if current.file_store == self.files.name:
                kept = {f.file_id for f in new.files}
                self._delete(f.file_id for f in current.files if f.file_id not in kept)
        return new

    def sync(self) -> list[Document]:
        """Upload every document whose files are not in the current store, and move PDFs
        stored in parts longer than a window to windows; return the documents changed."""
        done = []
        for doc in self.index.documents():
            new = self.ensure_uploaded(self.in_windows(doc))
            if new is not doc:
                done.append(new)
        return done

    def referenced(self) -> set[str]:
        """The file_ids that committed documents use."""
        return {f.file_id for doc in self.index.documents() for f in doc.files}

    def collect_garbage(self, *, dry_run: bool = False) -> Garbage:
        """This knowledge base's files that no committed document references and that are older
        than the grace period; deleted unless dry. Unreferenced files left alone are reported."""
        stored = list(self.files.list())  # before the records: see the module's docstring
        used = self.referenced()
        grace = self.settings.gc_grace_seconds
        now = time.time()
        found = Garbage(grace_seconds=grace, dry_run=dry_run)
        for s in stored:
            if s.file_id in used:
                continue
            if not owns(self.settings.kb_name, self.index.kb_id, s.filename):
                found.old_names.append(s)
            elif (age := age_seconds(s, now)) is None or age < grace:
                found.too_new.append(s)
            else:
                found.deleted.append(s)
        if not dry_run:
            self._delete(s.file_id for s in found.deleted)
        found.leftovers.extend(self.files.collect_leftovers(grace, dry_run=dry_run))
        return found

    def _delete(self, file_ids: Iterable[str]) -> None:
        for file_id in file_ids:
            self.files.delete(file_id)


class ClaimedStore:
    """A file store whose uploads are claimed first: one upload of a part at a time on this
    machine (`kb.claims`, key `upload-<knowledge base>-<doc>-p<part>`), and the file it stored
    is kept with the claim, so a concurrent ingest (another thread or process, whose listing of
    the remote files is older) takes that file instead of sending the same content again."""

    def __init__(self, files: FileStore, claims: Claims, kb_name: str) -> None:
        self.files = files
        self.claims = claims
        self.kb_name = kb_name
        self.name = files.name

    def upload(self, doc_id: str, part: PartKey, filename: str, mime_type: str, data: bytes) -> str:
        with self.claims.hold(f"upload-{self.kb_name}-{doc_id}-p{part}") as claim:
            store, _, file_id = claim.read().partition("\n")
            if store == self.files.name and file_id and self._still_there(file_id):
                return file_id
            file_id = self.files.upload(doc_id, part, filename, mime_type, data)
            claim.write(f"{self.files.name}\n{file_id}")
            return file_id

    def _still_there(self, file_id: str) -> bool:
        try:
            return self.files.exists(file_id)
        except KBError:  # not known now: the store's own upload finds an earlier copy
            return False

    def exists(self, file_id: str) -> bool:
        return self.files.exists(file_id)

    def delete(self, file_id: str) -> None:
        self.files.delete(file_id)

    def collect_leftovers(self, grace: float, *, dry_run: bool = False) -> list[str]:
        return self.files.collect_leftovers(grace, dry_run=dry_run)

    def list(self) -> Iterator[StoredFile]:
        return self.files.list()

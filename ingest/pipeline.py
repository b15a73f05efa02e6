"""The ingest pipeline: scan, hash, diff, extract, chunk, embed, upload, commit, prune.

Extraction runs ahead in a child process (with a time limit) and uploads run in a thread, so
both overlap with embedding, which is the bottleneck. Chunks of several documents are embedded
and written together; each document's record is committed only after its chunks and its upload,
so an interrupted run leaves nothing that looks complete, and the next run finishes the job.

One file never stops the run: a file that cannot be read, cut into parts or uploaded (a
refusal, or the service timing out, failing or unreachable) gets `failed: <reason>`, its chunks
are deleted and no record is written; the others go on. Once `UPSTREAM_STREAK` uploads in a
row failed for want of the service (or one was refused kb's key), the rest of the run sends no
more: each remaining new file fails at once with that reason, and the next run tries again.

Other writers (API requests, another `kb ingest`) may change the same documents meanwhile. A
record is changed only as read under the document's claim (`Index.update`); a new document is
committed with every source a record committed meanwhile has, and with whatever a removal took
since its copy was kept (its epoch, `Index.epoch`) put back first; a file whose committed
document was removed before its source was added is read again in a later pass (`PASSES`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import queue
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePath
from typing import TYPE_CHECKING

from ingest.extractor import Extractor
from ingest.failures import UnreadableFiles
from ingest.scan import scan
from kb.blobs import sha256_file
from kb.chunking import SPECIAL_TOKENS, chunk_pages, chunk_size_for
from kb.context import document_context, join_context, page_headings
from kb.errors import (
    ExtractionError,
    InvalidInput,
    KBError,
    TooLarge,
    UnsupportedType,
    UpstreamAuthError,
    UpstreamError,
    UpstreamNotFound,
    UpstreamRejected,
)
from kb.extraction import kind_of
from kb.service import KnowledgeBase
from kb.types import Chunk, Document, Extraction, FileResult, FileStatus
from kb.uploads import plan_parts

if TYPE_CHECKING:
    import numpy as np

Progress = Callable[[FileResult], None]
SKIP_REASONS = ("unsupported type", "empty file")
_LOOKAHEAD = 4
UPSTREAM_STREAK = 3  # uploads failing in a row for want of the service before the rest wait
PASSES = 3  # tries of a file whose document another writer removed while it was ingested
REMOVED_MEANWHILE = "its document was removed by another writer during the ingest; try again"
_REJECTED = (TooLarge, InvalidInput, UnsupportedType, UpstreamRejected)


@dataclass
class IngestReport:
    results: list[FileResult] = field(default_factory=list)
    seconds: float = 0.0
    embedded_chunks: int = 0
    uploaded_files: int = 0

    @property
    def counts(self) -> dict[str, int]:
        return dict(Counter(r.status for r in self.results))

    @property
    def failed(self) -> int:
        return sum(r.status == "failed" for r in self.results)


@dataclass(frozen=True)
class _Extracted:
    extraction: Extraction
    doc_id: str
    epoch: str  # the document's epoch before anything of it was written


Outcome = FileResult | str | _Extracted  # a final status, a known doc id, or new content


@dataclass
class _Pending:
    doc: Document
    chunks: list[Chunk]
    upload: Future[Document]
    epoch: str
    sources: list[tuple[str, list[Document]]]  # (source, versions it replaces)
    state: str = "pending"  # then "committed" or "failed"
    reason: str = ""


def ingest_paths(
    kb: KnowledgeBase,
    paths: Sequence[Path],
    *,
    prune: bool = False,
    progress: Progress | None = None,
    on_start: Callable[[int], None] | None = None,
) -> IngestReport:
    """Ingest files and folders. With `prune`, documents that vanished from these roots go.
    `on_start` gets the number of files found; `progress` gets each file's result."""
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise InvalidInput(f"no such file or directory: {', '.join(missing)}")
    files = scan(paths)
    if on_start is not None:
        on_start(len(files))
    items = [(p, str(p.resolve())) for p in files]
    report = _Run(kb, progress).run(items)
    if prune:
        roots = [p.resolve() for p in paths if p.is_dir()]
        seen = {source for _, source in items}
        report.results.extend(_prune(kb, roots, seen, progress))
    return report


def upload_source(name: str) -> str:
    """An uploaded file's own source, `upload:<random id>/<name>`: another file uploaded under
    the same name is another document, never a new version of this one."""
    return f"upload:{secrets.token_hex(6)}/{name}"


def ingest_uploads(kb: KnowledgeBase, uploads: Sequence[tuple[Path, str]]) -> IngestReport:
    """Ingest uploaded files: (temporary path, client filename), each under its own source
    (`upload_source`); the title comes from the name.

    The temporary file keeps the client's extension: it decides the type with the content."""
    return _Run(kb, None).run([(path, upload_source(name)) for path, name in uploads])


def replace_document(kb: KnowledgeBase, doc_id: str, path: Path, name: str) -> IngestReport:
    """Ingest `path` (client filename `name`, which gives the title) as the new content of
    document `doc_id`: it takes over the document's sources, and the old version goes once the
    new one is committed (as a changed file on disk does). NotFound when there is no such
    document (a replacement that waited for another finds the document gone); one result per
    source."""
    with kb.index.claims.hold(f"replace-{doc_id}"):  # replacements of one document queue
        doc = kb.document(doc_id)
        run = _Run(kb, None, names=dict.fromkeys(doc.sources, name))
        return run.run([(path, source) for source in doc.sources])


def _prune(
    kb: KnowledgeBase, roots: list[Path], seen: set[str], progress: Progress | None
) -> Iterator[FileResult]:
    prefixes = tuple(str(root) + os.sep for root in roots)
    for doc in kb.index.documents():
        gone = [s for s in doc.sources if s.startswith(prefixes) and s not in seen]
        for source in gone:
            result = FileResult(source, "removed", doc_id=doc.id)
            try:
                _drop_source(kb, doc.id, source)
            except KBError as exc:  # e.g. its stored file could not be deleted: gc can
                result = FileResult(source, "failed", f"not fully removed: {exc}", doc_id=doc.id)
            if progress:
                progress(result)
            yield result


def _drop_source(kb: KnowledgeBase, doc_id: str, source: str) -> None:
    """Take `source` off a document (read under its claim); a document left without sources
    goes."""
    with kb.index.claim(doc_id):
        doc = kb.index.get(doc_id)
        if doc is None or source not in doc.sources:
            return
        rest = tuple(s for s in doc.sources if s != source)
        if rest:
            kb.index.commit(dataclasses.replace(doc, sources=rest))
        else:
            kb.remove(doc.id)


def _merged(sources: tuple[str, ...], more: Sequence[str]) -> tuple[str, ...]:
    return (*sources, *(s for s in dict.fromkeys(more) if s not in sources))


class _Run:
    """One ingest run. Three stages overlap: extraction (a thread driving the child process),
    reading (this thread: chunking, submitting uploads) and writing (one thread: embedding a
    batch, writing its chunks, committing its records), so the model is never idle while
    files are read."""

    def __init__(
        self, kb: KnowledgeBase, progress: Progress | None, names: dict[str, str] | None = None
    ) -> None:
        self.kb = kb
        self.names = names or {}  # source -> the file name its title comes from, if not its own
        self.settings = kb.settings
        self.progress = progress
        self.report = IngestReport()
        self.size = chunk_size_for(kb.embedder, self.settings.chunk_tokens)
        self.overlap = min(self.settings.chunk_overlap, self.size // 2)
        self._tokens = kb.embedder.token_offsets
        self.batch: list[_Pending] = []
        self.seen: dict[str, _Pending] = {}  # every new document of this run, by id
        self.lock = threading.RLock()  # guards _Pending.sources/state and the results
        self.uploads = ThreadPoolExecutor(2, thread_name_prefix="kb-upload")
        self.writer = ThreadPoolExecutor(1, thread_name_prefix="kb-write")
        self.writing: Future[None] | None = None
        self.upstream_streak = 0  # uploads failed in a row for want of the service
        self.upstream_down: str | None = None  # why the rest of the run sends no uploads
        self.paths: dict[str, Path] = {}
        self.again: list[str] = []  # sources whose document was removed meanwhile: next pass
        self.last_pass = False
        self.unreadable = UnreadableFiles(self.settings.kb_dir / "unreadable.json")

    def run(self, items: list[tuple[Path, str]]) -> IngestReport:
        started = time.perf_counter()
        by_source: dict[str, list[Document]] = {}
        by_id: dict[str, Document] = {}
        for doc in self.kb.index.documents():
            by_id[doc.id] = doc
            for source in doc.sources:
                by_source.setdefault(source, []).append(doc)
        self.paths = {source: path for path, source in items}
        todo, known = items, by_id
        try:
            for attempt in range(PASSES):
                self.last_pass = attempt == PASSES - 1
                self.seen = {}
                for path, source, outcome in self._extract_ahead(todo, known):
                    self._handle(path, source, outcome, by_source, by_id)
                    if sum(len(p.chunks) for p in self.batch) >= self.settings.write_batch_size:
                        self._hand_off()
                self._hand_off()
                self._wait()
                with self.lock:
                    again, self.again = self.again, []
                if not again:
                    break
                todo, known = [(self.paths[s], s) for s in again], {}  # read and embedded again
        finally:
            self.writer.shutdown(wait=True, cancel_futures=True)
            self.uploads.shutdown(wait=True, cancel_futures=True)
            self.unreadable.save()
        order = {source: i for i, (_, source) in enumerate(items)}
        self.report.results.sort(key=lambda r: order.get(r.path, len(order)))
        self.report.seconds = time.perf_counter() - started
        return self.report

    def _hand_off(self) -> None:
        """Write the current batch once the previous one is written; keep reading meanwhile."""
        self._wait()
        if self.batch:
            batch, self.batch = self.batch, []
            self.writing = self.writer.submit(self._write, batch)

    def _wait(self) -> None:
        if self.writing is not None:
            writing, self.writing = self.writing, None
            writing.result()  # a failed write stops the run here

    def _extract_ahead(
        self, items: list[tuple[Path, str]], by_id: dict[str, Document]
    ) -> Iterator[tuple[Path, str, Outcome]]:
        """Yield (path, source, outcome) in order; extraction runs ahead in a thread."""
        out: queue.Queue[tuple[Path, str, Outcome] | None] = queue.Queue(_LOOKAHEAD)
        stop = threading.Event()
        failure: list[BaseException] = []

        def work() -> None:
            try:
                with Extractor(
                    self.settings.extract_timeout,
                    self.settings.extract_page_timeout,
                    self.settings.extraction_limits,
                ) as extractor:
                    for path, source in items:
                        if stop.is_set():
                            break
                        out.put((path, source, self._prepare(extractor, path, source, by_id)))
            except BaseException as exc:  # handed to the reading thread, which raises it
                failure.append(exc)
            finally:
                out.put(None)

        worker = threading.Thread(target=work, name="kb-extract", daemon=True)
        worker.start()
        try:
            while (item := out.get()) is not None:
                yield item
            if failure:
                raise failure[0]
        finally:
            stop.set()
            while worker.is_alive():  # unblock a worker waiting on a full queue
                with contextlib.suppress(queue.Empty):
                    out.get(timeout=0.1)
            worker.join()

    def _prepare(
        self, extractor: Extractor, path: Path, source: str, by_id: dict[str, Document]
    ) -> Outcome:
        if kind_of(path) is None:
            return FileResult(source, "skipped", "unsupported type")
        try:
            size = path.stat().st_size
            if size > self.settings.max_file_bytes:
                limit = self.settings.max_file_bytes // (1024 * 1024)
                return FileResult(source, "skipped", f"too large ({size:,} bytes > {limit} MB)")
            doc_id = sha256_file(path)
        except OSError as exc:
            return FileResult(source, "failed", f"unreadable: {exc.strerror or exc}")
        if doc_id in by_id:
            return doc_id
        if (known := self.unreadable.get(doc_id)) is not None:  # the same bytes as before
            return FileResult(source, "failed", known, doc_id=doc_id)
        epoch = self.kb.index.epoch(doc_id)  # before anything of it is written
        try:
            extraction = extractor.extract(path)
        except ExtractionError as exc:
            status: FileStatus = "skipped" if exc.reason in SKIP_REASONS else "failed"
            self.unreadable.add(doc_id, exc.reason, exc.message)
            return FileResult(source, status, exc.message, doc_id=doc_id)
        try:
            self.kb.blobs.put_file(path, doc_id)
        except OSError as exc:
            reason = f"cannot keep a local copy: {exc.strerror or exc}"
            return FileResult(source, "failed", reason, doc_id=doc_id)
        title = extraction.title
        if not title or title == path.stem:  # a file name, not a real title: the user's name
            title = PurePath(self.names.get(source, source.removeprefix("upload:"))).stem
        return _Extracted(dataclasses.replace(extraction, title=title), doc_id, epoch)

    def _handle(
        self,
        path: Path,
        source: str,
        outcome: Outcome,
        by_source: dict[str, list[Document]],
        by_id: dict[str, Document],
    ) -> None:
        if isinstance(outcome, FileResult):
            self._record(outcome)
            return
        doc_id = outcome if isinstance(outcome, str) else outcome.doc_id
        previous = [d for d in by_source.get(source, []) if d.id != doc_id]
        if doc_id in self.seen:  # the same content again in this run
            self._add_source(self.seen[doc_id], source, previous)
            return
        if isinstance(outcome, str):  # content already in the index
            doc = by_id[outcome]
            if source in doc.sources:
                self._record(_result(source, "unchanged", doc))
                return
            self._add_to_committed(outcome, source, previous)
            return
        with self.lock:
            down = self.upstream_down
        if down is not None:  # not embedded either: the next run does it with its upload
            self._record(FileResult(source, "failed", down, doc_id=doc_id))
            return
        try:
            doc, chunks = self._build(doc_id, source, path, outcome.extraction)
        except (KBError, OSError) as exc:  # e.g. a PDF whose page windows cannot be planned
            self._record(
                FileResult(source, "failed", _failure(exc, "cannot prepare"), doc_id=doc_id)
            )
            return
        upload = self.uploads.submit(self._upload, doc)
        pending = _Pending(doc, chunks, upload, outcome.epoch, [(source, previous)])
        self.batch.append(pending)
        self.seen[doc_id] = pending

    def _add_source(self, p: _Pending, source: str, previous: list[Document]) -> None:
        with self.lock:
            if p.state == "pending":  # the writer commits every source in p.sources
                p.sources.append((source, previous))
                return
            if p.state == "failed":
                self._record(FileResult(source, "failed", p.reason, doc_id=p.doc.id))
                return
        self._add_to_committed(p.doc.id, source, previous)

    def _add_to_committed(self, doc_id: str, source: str, previous: list[Document]) -> None:
        """Add `source` to a committed document, as it is now; a document removed meanwhile
        (by another writer) is not written back, and the file is read again next pass."""
        had: list[bool] = []

        def add(current: Document) -> Document:
            had.append(source in current.sources)
            return (
                current
                if had[-1]
                else dataclasses.replace(current, sources=_merged(current.sources, [source]))
            )

        doc = self.kb.index.update(doc_id, add)
        if doc is None:
            self._again(source, doc_id)
        elif had[-1]:
            self._record(_result(source, "unchanged", doc))
        else:
            self._replace(previous, source, doc, f"same content as {doc.sources[0]}")

    def _again(self, source: str, doc_id: str) -> None:
        """`source`'s document was removed while it was ingested: read it again next pass."""
        with self.lock:
            if self.last_pass:
                self._record(FileResult(source, "failed", REMOVED_MEANWHILE, doc_id=doc_id))
            else:
                self.again.append(source)

    def _build(
        self, doc_id: str, source: str, path: Path, extraction: Extraction
    ) -> tuple[Document, list[Chunk]]:
        """The document record (to commit once uploaded) and its chunks. Chunks stay within a
        page window (a chunk over sparse pages could otherwise span several windows, and a
        question would have to send them all). Each chunk's context (`kb.context`) is its
        document's title and, in a PDF, the heading of the page it starts on. (Chunks cut at
        every page instead sent the evidence page less often on the FinanceBench filings: the
        chunk that joins a page's tail to the next page's heading is often the one found.)"""
        parts = plan_parts(
            extraction.kind, extraction.page_count, self.kb.blobs.read(doc_id), self.settings
        )
        context = document_context(extraction.title, source)
        headings = page_headings(extraction.pages) if extraction.kind == "pdf" else {}
        longest = max((join_context(context, h) for h in headings.values()), key=len, default="")
        room = self.kb.embedder.max_tokens - SPECIAL_TOKENS - len(self._tokens(longest or context))
        size = max(min(self.size, room), 1)  # the model reads the context and the whole chunk
        chunks: list[Chunk] = []
        for part in parts:
            pages = [p for p in extraction.pages if part.page_start <= p.number <= part.page_end]
            chunks += [
                dataclasses.replace(
                    c, context=join_context(context, headings.get(c.page_start, ""))
                )
                for c in chunk_pages(
                    doc_id, part.index, pages, self._tokens, size, min(self.overlap, size // 2)
                )
            ]
        if not chunks:  # image-only PDFs and images: findable by title
            chunks = [Chunk(doc_id, 0, 0, extraction.title, 1, 1, 0, 0)]
        doc = Document(
            id=doc_id,
            title=extraction.title,
            kind=extraction.kind,
            mime_type=extraction.mime_type,
            size_bytes=path.stat().st_size,
            page_count=extraction.page_count,
            chunk_count=len(chunks),
            sources=(source,),
            parts=parts,
            encrypted=extraction.encrypted,
            notes=extraction.notes,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            embedding_model=self.kb.embedder.name,
        )
        return doc, chunks

    def _upload(self, doc: Document) -> Document:
        """Upload `doc`'s parts (in an upload thread), counting failures of the service: after
        `UPSTREAM_STREAK` in a row, or kb's key refused once, later uploads are not sent."""
        with self.lock:
            down = self.upstream_down
        if down is not None:
            raise _NotSent(down)
        try:
            uploaded = self.kb.uploads.upload(doc)
        except (UpstreamRejected, UpstreamNotFound):  # the service answered: about this file
            self._upstream_answered()
            raise
        except UpstreamError as exc:
            with self.lock:
                self.upstream_streak += 1
                if self.upstream_down is None and (
                    isinstance(exc, UpstreamAuthError) or self.upstream_streak >= UPSTREAM_STREAK
                ):
                    self.upstream_down = f"not uploaded: earlier uploads failed ({exc})"
            raise
        self._upstream_answered()
        return uploaded

    def _upstream_answered(self) -> None:
        with self.lock:
            self.upstream_streak = 0

    def _write(self, batch: list[_Pending]) -> None:
        """Embed a batch, write its chunks, then commit the records of its uploaded documents.
        A document whose upload failed loses its chunks and gets no record."""
        chunks = [c for p in batch for c in p.chunks]
        embeddings = self.kb.document_embedder.embed([c.indexed_text for c in chunks])
        self.kb.index.add_chunks(chunks, embeddings)
        self.report.embedded_chunks += len(chunks)
        ready: list[tuple[_Pending, Document]] = []
        failed: list[tuple[_Pending, str]] = []
        for p in batch:
            try:
                ready.append((p, p.upload.result()))
            except _REJECTED as exc:
                failed.append((p, f"upload rejected: {exc}"))
            except (KBError, OSError) as exc:  # this file's failure, never the run's end
                failed.append((p, _failure(exc, "upload failed")))
        committed = self._commit(ready, chunks, embeddings, failed)
        if failed:
            # Chunks are content-addressed: keep them if another writer committed the same
            # document meanwhile, since they are its chunks too (one still writing them puts
            # back what is missing when it commits).
            ids = [p.doc.id for p, _ in failed]
            with self.kb.index.claim(*ids):
                taken = self.kb.index.get_many(ids)
                self.kb.index.delete_chunks_of([i for i in ids if i not in taken])
        for p, reason in failed:
            with self.lock:
                p.state, p.reason = "failed", reason
                for source, _ in p.sources:
                    self._record(FileResult(source, "failed", reason, doc_id=p.doc.id))
        for doc, sources in committed:
            for source, previous in sources:
                self._replace(previous, source, doc, "; ".join(doc.notes))

    def _commit(
        self,
        ready: list[tuple[_Pending, Document]],
        chunks: list[Chunk],
        embeddings: np.ndarray,
        failed: list[tuple[_Pending, str]],
    ) -> list[tuple[Document, list[tuple[str, list[Document]]]]]:
        """Commit the uploaded documents under their claims. A record another writer committed
        meanwhile is kept and gains these sources. A new one is committed with exactly its
        chunks, and with its copy and stored files put back first when a removal may have
        taken them since its copy was kept (its epoch moved). Documents that cannot be put
        back go to `failed`."""
        index = self.kb.index
        ids = [p.doc.id for p, _ in ready]
        with self.lock, index.claim(*ids):
            current = index.get_many(ids)
            docs: list[tuple[_Pending, Document]] = []
            new: set[str] = set()
            for p, uploaded in ready:
                sources = [s for s, _ in p.sources]
                if (cur := current.get(p.doc.id)) is not None:
                    docs.append(
                        (p, dataclasses.replace(cur, sources=_merged(cur.sources, sources)))
                    )
                    continue
                if index.epoch(p.doc.id) != p.epoch or not self.kb.blobs.has(p.doc.id):
                    try:
                        uploaded = self._put_back(p)
                    except (KBError, OSError) as exc:
                        failed.append((p, _failure(exc, "removed meanwhile, not put back")))
                        continue
                docs.append((p, dataclasses.replace(uploaded, sources=tuple(sources))))
                new.add(p.doc.id)
            # A new document's chunks, exactly: leftovers of a crashed run go, and chunks a
            # removal or another writer's failed ingest of the same content took come back.
            stored = index.chunk_ids(sorted(new))
            mine = [i for i, c in enumerate(chunks) if c.doc_id in new]
            missing = [i for i in mine if chunks[i].id not in stored]
            if missing:
                index.add_chunks([chunks[i] for i in missing], embeddings[missing])
            index.delete_chunk_ids(sorted(stored - {chunks[i].id for i in mine}))
            index.commit_many([doc for _, doc in docs])
            for p, doc in docs:
                p.state = "committed"
                self.report.uploaded_files += len(doc.files)
            return [(doc, list(p.sources)) for p, doc in docs]

    def _put_back(self, p: _Pending) -> Document:
        """The copy and stored files of `p`'s document, kept or stored again (its claim is
        held): another writer removed the document while this run ingested it."""
        doc_id = p.doc.id
        if not self.kb.blobs.has(doc_id):
            path = self.paths[p.sources[0][0]]
            if sha256_file(path) != doc_id:
                raise InvalidInput(f"{path.name} changed during the ingest")
            self.kb.blobs.put_file(path, doc_id)
        return self.kb.uploads.upload(p.doc)

    def _replace(self, previous: list[Document], source: str, doc: Document, reason: str) -> None:
        """`source` now belongs to the committed `doc`: drop it from older versions. The new
        version stands even when an older one cannot be fully removed (its stored files are
        then left to `kb files gc`); the result says so."""
        for old in previous:
            try:
                _drop_source(self.kb, old.id, source)
            except KBError as exc:
                note = f"older version {old.id[:12]} not fully removed: {exc}"
                reason = f"{reason}; {note}" if reason else note
        self._record(_result(source, "updated" if previous else "added", doc, reason))

    def _record(self, result: FileResult) -> None:
        with self.lock:
            self.report.results.append(result)
            if self.progress:
                self.progress(result)


class _NotSent(UpstreamError):
    """An upload not sent because the service failed the ones before it."""


def _failure(exc: KBError | OSError, what: str) -> str:
    """A failed file's reason: a file that is not what it seemed (a PDF that cannot be cut into
    parts or rewritten) its own message; anything else `<what>: <error>`."""
    if isinstance(exc, ExtractionError | _NotSent):
        return exc.message
    if isinstance(exc, OSError):
        return f"{what}: {exc.strerror or exc}"
    return f"{what}: {exc}"


def _result(source: str, status: FileStatus, doc: Document, reason: str = "") -> FileResult:
    return FileResult(
        source, status, reason, doc_id=doc.id, pages=doc.page_count, chunks=doc.chunk_count
    )

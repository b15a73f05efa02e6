"""The service layer: every operation on a knowledge base, written once.

`open_kb(settings)` opens the clients once per process and picks the backends from
configuration: with an Anthropic API key, the Files API store and the Claude answerer; without
one, the local store and the extractive answerer. The CLI, the API and the eval harness parse
and print; what they do, they do through a `KnowledgeBase`:

    with open_kb(settings) as kb:
        hits = kb.search("What was the 2015 capital expenditure?")
        answer = kb.ask("What was the 2015 capital expenditure?", hits)

The answerer is given only the callables it needs (`Uploads.in_windows`, `ensure_uploaded`,
`reupload`), never the knowledge base itself.
"""

from __future__ import annotations

import importlib.util
import threading
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING

from kb.errors import InvalidInput, NotFound
from kb.retrieval import CHUNKS_PER_DOC
from kb.settings import Settings
from kb.types import Answer, AnswerEvent, Document, DocumentHit, SearchFilters, SearchMode

if TYPE_CHECKING:
    import anthropic

    from kb.answering import Answerer
    from kb.batches import BulkQuestions
    from kb.blobs import BlobStore
    from kb.embedding import Embedder
    from kb.files import FileStore
    from kb.index import Index
    from kb.retrieval import Retriever
    from kb.uploads import Garbage, Uploads


@dataclass
class KnowledgeBase:
    settings: Settings
    embedder: Embedder
    index: Index
    blobs: BlobStore
    files: FileStore
    uploads: Uploads
    retriever: Retriever
    answerer: Answerer
    anthropic: anthropic.Anthropic | None = None  # the SDK client when online

    @property
    def document_embedder(self) -> Embedder:
        """What embeds documents at ingest (`document_backend`): the queries' model, or one
        that makes the same vectors faster, loaded at the first ingest."""
        backend = document_backend(self.settings)
        if backend == self.embedder.backend:
            return self.embedder
        return shared_embedder(self.settings, backend)

    def __enter__(self) -> KnowledgeBase:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self.index.close()
        if self.anthropic is not None:
            self.anthropic.close()

    # Questions -------------------------------------------------------------------------------

    def search(
        self,
        query: str,
        *,
        k: int | None = None,
        mode: SearchMode | None = None,
        filters: SearchFilters | None = None,
        chunks_per_doc: int = CHUNKS_PER_DOC,
        pages: bool = True,
    ) -> list[DocumentHit]:
        """The `k` best documents, each with its best chunks. `pages=False` skips the second
        pass that ranks the chunks within each document (a ranking of documents only).

        With filters, more candidates (up to `max_k`) are ranked so that enough documents
        survive the filter; their chunks are then ranked within each kept document."""
        return self.search_many(
            [query],
            [filters],
            k=k,
            mode=mode,
            chunks_per_doc=chunks_per_doc,
            pages=pages,
        )[0]

    def search_many(
        self,
        queries: Sequence[str],
        filters: Sequence[SearchFilters | None],
        *,
        k: int | None = None,
        mode: SearchMode | None = None,
        chunks_per_doc: int = CHUNKS_PER_DOC,
        pages: bool = True,
    ) -> list[list[DocumentHit]]:
        """`search` for each query with its filters, the queries retrieved together (see
        `Retriever.search_many`)."""
        k = k or self.settings.search_k
        found: dict[int, list[DocumentHit]] = {}
        plain = [i for i, f in enumerate(filters) if not f]
        hits = self.retriever.search_many(
            [queries[i] for i in plain], k=k, mode=mode, chunks_per_doc=chunks_per_doc, pages=pages
        )
        found.update(zip(plain, hits, strict=True))
        narrowed = [i for i, f in enumerate(filters) if f]
        wide = max(k, self.settings.max_k)
        hits = self.retriever.search_many(
            [queries[i] for i in narrowed], k=wide, mode=mode, pages=False
        )
        for i, candidates in zip(narrowed, hits, strict=True):
            only = filters[i]
            assert only is not None
            kept = [h for h in candidates if only.matches(h.document)][:k]
            found[i] = (
                self.retriever.best_chunks(
                    queries[i], kept, mode=mode, chunks_per_doc=chunks_per_doc
                )
                if pages
                else kept
            )
        return [found[i] for i in range(len(queries))]

    def ask(self, question: str, hits: Sequence[DocumentHit]) -> Answer:
        return self.answerer.answer(question, hits)

    def stream(self, question: str, hits: Sequence[DocumentHit]) -> Iterator[AnswerEvent]:
        """TextDelta and CitationDelta events as they arrive, then one AnswerDone."""
        return self.answerer.stream(question, hits)

    def bulk(self) -> BulkQuestions:
        """Bulk-question jobs: many questions answered through Message Batches (offline, by
        the extractive answerer), resumable."""
        from kb.batches import BulkQuestions

        return BulkQuestions(self)

    # Documents and their stored files --------------------------------------------------------

    def document(self, doc_id: str) -> Document:
        doc = self.index.get(doc_id)
        if doc is None:
            raise NotFound(f"no document {doc_id}")
        return doc

    def remove(self, doc_id: str) -> Document:
        """Delete a document everywhere: record, chunks, stored files, local copy, all under
        the document's claim, so that no writer sees some of them gone and others not."""
        with self.index.claim(doc_id):
            doc = self.document(doc_id)
            self.index.remove(doc_id)
            if doc.file_store == self.files.name:
                for remote in doc.files:
                    self.files.delete(remote.file_id)
            self.blobs.delete(doc_id)
        return doc

    def sync(self) -> list[Document]:
        """Upload originals missing from the current store, move long PDFs to page windows."""
        return self.uploads.sync()

    def collect_garbage(self, *, dry_run: bool = False) -> Garbage:
        """Delete (or with `dry_run` only list) this knowledge base's stored files that no
        document references and that are older than the grace period; report those kept."""
        return self.uploads.collect_garbage(dry_run=dry_run)

    def collect_copies(self, *, dry_run: bool = False) -> list[str]:
        """Delete (or with `dry_run` only list) local copies of originals that no document
        uses, once older than `KB_GC_GRACE_SECONDS`, and return their document ids. Documents
        of every knowledge base in the same Chroma count: before knowledge bases other than
        `default` had directories of their own (`Settings.kb_dir`), they shared its copies."""
        used = self.index.ids_of_every_knowledge_base()
        return self.blobs.collect(used, grace=self.settings.gc_grace_seconds, dry_run=dry_run)

    def referenced_files(self) -> set[str]:
        return self.uploads.referenced()


# control, format, surrogate and separator characters: nothing a reader would see
_INVISIBLE = frozenset({"Cc", "Cf", "Cs", "Zs", "Zl", "Zp"})


def is_blank(text: str) -> bool:
    """True when `text` shows nothing: only whitespace, control and format characters (NUL,
    zero-width spaces, direction marks, a byte-order mark)."""
    return all(ch.isspace() or unicodedata.category(ch) in _INVISIBLE for ch in text)


def check_question(text: str, settings: Settings, field: str = "question") -> str:
    """The question, stripped; refused when blank (nothing but whitespace, control or format
    characters) or over `max_question_chars`."""
    question = text.strip()
    if is_blank(question):
        raise InvalidInput(f"{field}: must not be empty (it has no visible characters)")
    if len(question) > settings.max_question_chars:
        raise InvalidInput(
            f"{field}: {len(question)} characters is over the limit of "
            f"{settings.max_question_chars}"
        )
    return question


def load_embedder(settings: Settings, backend: str | None = None) -> Embedder:
    """The embedding model on `backend` (`KB_EMBED_BACKEND` unless given)."""
    backend = backend or settings.embed_backend
    if backend in ("torch", "torch-bf16"):
        from kb.embedding import SentenceTransformerEmbedder

        return SentenceTransformerEmbedder(
            settings.embedding_model, settings.embed_batch_size, bf16=backend == "torch-bf16"
        )
    from kb.onnx_embedding import OnnxEmbedder

    return OnnxEmbedder(
        settings.embedding_model,
        backend=backend,
        cache_dir=settings.model_cache_dir,
        batch_size=settings.embed_batch_size,
        threads=settings.embed_threads,
    )


def document_backend(settings: Settings) -> str:
    """The backend that embeds documents (`KB_INGEST_BACKEND`): `auto` is `torch-bf16` where
    the CPU does bf16 in hardware, torch is installed and the queries' backend makes the same
    vectors; else the queries' backend."""
    from kb.embedding import VECTORS, bf16_in_hardware

    if settings.ingest_backend != "auto":
        return settings.ingest_backend
    if (
        VECTORS[settings.embed_backend] == VECTORS["torch-bf16"]
        and bf16_in_hardware()
        and importlib.util.find_spec("torch") is not None
    ):
        return "torch-bf16"
    return settings.embed_backend


_shared: dict[tuple[str, str, int, int], Embedder] = {}
_shared_lock = threading.Lock()


def shared_embedder(settings: Settings, backend: str) -> Embedder:
    """The model on `backend`, loaded once per process (every knowledge base of `kb serve`
    shares it)."""
    key = (settings.embedding_model, backend, settings.embed_batch_size, settings.embed_threads)
    with _shared_lock:
        if key not in _shared:
            _shared[key] = load_embedder(settings, backend)
        return _shared[key]


def open_kb(
    settings: Settings,
    *,
    embedder: Embedder | None = None,
    anthropic_client: anthropic.Anthropic | None = None,
) -> KnowledgeBase:
    from kb.answering import ExtractiveAnswerer
    from kb.blobs import BlobStore
    from kb.files import LocalFileStore
    from kb.index import Index
    from kb.retrieval import Retriever
    from kb.uploads import Uploads

    embedder = embedder or load_embedder(settings)
    index = Index.open(settings, embedder)
    blobs = BlobStore(settings.blob_dir)
    retriever = Retriever(index, embedder, settings)
    if not settings.online:
        files: FileStore = LocalFileStore(settings.kb_dir / "files", settings.kb_name, index.kb_id)
        uploads = Uploads(settings, index, blobs, files)
        answerer: Answerer = ExtractiveAnswerer(settings, embedder)
        return KnowledgeBase(settings, embedder, index, blobs, files, uploads, retriever, answerer)
    from kb.anthropic.answerer import ClaudeAnswerer
    from kb.anthropic.client import make_client
    from kb.anthropic.files import AnthropicFileStore

    client = anthropic_client or make_client(settings)
    files = AnthropicFileStore(client, settings, index.kb_id)
    uploads = Uploads(settings, index, blobs, files)
    answerer = ClaudeAnswerer(
        client,
        settings,
        in_windows=uploads.in_windows,
        ensure_uploaded=uploads.ensure_uploaded,
        reupload=uploads.reupload,
        file_exists=files.exists,
    )
    return KnowledgeBase(
        settings, embedder, index, blobs, files, uploads, retriever, answerer, client
    )

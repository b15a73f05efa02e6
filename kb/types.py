"""Domain types shared by every stage. Plain frozen dataclasses, no behaviour beyond naming.

Page numbers are 1-based and inclusive everywhere (`page_start`..`page_end`), always in the
original file's numbering, even for a PDF that was split into parts for upload.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

DocKind = Literal["pdf", "text", "image"]
DOC_KINDS: tuple[DocKind, ...] = get_args(DocKind)
AnsweredBy = Literal["claude", "extractive"]
SearchMode = Literal["dense", "bm25", "hybrid"]  # embeddings, words, or both fused
SEARCH_MODES: tuple[SearchMode, ...] = get_args(SearchMode)


@dataclass(frozen=True, slots=True)
class Page:
    number: int  # 1-based page number in the original file (1 for text and images)
    text: str


@dataclass(frozen=True, slots=True)
class Extraction:
    """What `kb.extraction.extract` read from one file."""

    kind: DocKind
    mime_type: str  # the type the Files API is given: application/pdf, text/plain, image/*
    title: str
    pages: tuple[Page, ...]
    page_count: int
    encrypted: bool = False  # PDF that opened with the empty password: upload a decrypted copy
    notes: tuple[str, ...] = ()  # e.g. "image-only: no text layer", "garbled text skipped: p3"


@dataclass(frozen=True, slots=True)
class Part:
    """A contiguous page range of the original that is uploaded as its own file."""

    index: int
    page_start: int
    page_end: int


@dataclass(frozen=True, slots=True)
class RemoteFile:
    """One uploaded file (one part of a document) in a file store."""

    file_id: str
    part: int
    page_start: int
    page_end: int


@dataclass(frozen=True, slots=True)
class Chunk:
    doc_id: str
    part: int  # the page window (upload part) the chunk was cut from
    n: int
    text: str
    page_start: int
    page_end: int
    char_start: int = 0  # offsets into the extracted text of the part (text files: the file)
    char_end: int = 0
    context: str = ""  # the document's title, embedded and indexed with the text, not shown

    @property
    def id(self) -> str:
        return f"{self.doc_id}:{self.part}:{self.n}"

    @property
    def indexed_text(self) -> str:
        """What is embedded and BM25-indexed: the context header, then the text."""
        return f"{self.context}\n{self.text}" if self.context else self.text


@dataclass(frozen=True, slots=True)
class Document:
    """A committed document record. Only `ready` documents exist in the index."""

    id: str  # sha256 of the original bytes
    title: str
    kind: DocKind
    mime_type: str
    size_bytes: int
    page_count: int
    chunk_count: int
    sources: tuple[str, ...]  # absolute paths, or "upload:<random id>/<name>" for API uploads
    parts: tuple[Part, ...]
    files: tuple[RemoteFile, ...] = ()  # empty until uploaded to the configured file store
    file_store: str = ""  # "local" or "anthropic": which store `files` belong to
    encrypted: bool = False
    notes: tuple[str, ...] = ()
    created_at: str = ""  # RFC 3339, UTC
    embedding_model: str = ""

    @property
    def source(self) -> str:
        return self.sources[0] if self.sources else ""


FileStatus = Literal["added", "updated", "unchanged", "failed", "skipped", "removed"]


@dataclass(frozen=True, slots=True)
class FileResult:
    """The per-file outcome of an ingest run, exactly as the CLI and the API report it."""

    path: str
    status: FileStatus
    reason: str = ""
    doc_id: str | None = None
    pages: int = 0
    chunks: int = 0

    @property
    def label(self) -> str:
        return f"{self.status}: {self.reason}" if self.reason else self.status


@dataclass(frozen=True, slots=True)
class SearchFilters:
    """What a search may return: documents with a source under `source_prefix`, of `kind`."""

    source_prefix: str | None = None
    kind: DocKind | None = None

    def __bool__(self) -> bool:
        return bool(self.source_prefix or self.kind)

    def matches(self, doc: Document) -> bool:
        if self.kind and doc.kind != self.kind:
            return False
        return not self.source_prefix or any(s.startswith(self.source_prefix) for s in doc.sources)


@dataclass(frozen=True, slots=True)
class ChunkHit:
    chunk: Chunk
    score: float


@dataclass(frozen=True, slots=True)
class DocumentHit:
    document: Document
    score: float
    chunks: tuple[ChunkHit, ...]  # best first


@dataclass(frozen=True, slots=True)
class Citation:
    doc_id: str
    title: str
    source: str
    cited_text: str
    page_start: int | None = None  # original pages, inclusive (PDFs)
    page_end: int | None = None
    char_start: int | None = None  # character range, end exclusive (text documents)
    char_end: int | None = None
    file_id: str | None = None

    @property
    def where(self) -> str:
        """Where the citation points, as a reader says it: "p. 4", "pp. 4-5", "chars 10-20"."""
        if self.page_start is not None:
            if self.page_start == self.page_end:
                return f"p. {self.page_start}"
            return f"pp. {self.page_start}-{self.page_end}"
        if self.char_start is not None:
            return f"chars {self.char_start}-{self.char_end}"
        return ""


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_write_tokens: int = 0
    cache_read_tokens: int = 0
    cost_usd: float | None = None


@dataclass(frozen=True, slots=True)
class SentDocument:
    """A document part (a page window of a long PDF) attached to a question, with the file_id
    that was sent and its estimated input tokens."""

    doc_id: str
    title: str
    score: float
    file_id: str | None
    part: int = 0
    page_start: int = 1
    page_end: int = 1
    pages: int = 0  # PDF pages sent (0 for text and images)
    estimated_tokens: int = 0


@dataclass(frozen=True, slots=True)
class Answer:
    text: str
    citations: tuple[Citation, ...]
    documents: tuple[SentDocument, ...]
    answered_by: AnsweredBy
    usage: Usage = field(default_factory=Usage)
    model: str | None = None
    request_id: str | None = None
    notice: str = ""  # e.g. "No model was called: these are the best passages."
    estimated_input_tokens: int = 0  # what kb expected the request to cost before sending it
    estimated_cost_usd: float | None = None

    @property
    def pages_sent(self) -> int:
        return sum(d.pages for d in self.documents)


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class CitationDelta:
    citation: Citation


@dataclass(frozen=True, slots=True)
class AnswerDone:
    answer: Answer


AnswerEvent = TextDelta | CitationDelta | AnswerDone

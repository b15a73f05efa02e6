"""Request and response bodies of the REST API: msgspec Structs, separate from `kb.types`.

The `from_*` functions are the only place where domain objects become wire objects, so the
API's shape can stay stable while the domain types change.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from kb.batches import JobStatus
from kb.types import (
    Answer,
    Chunk,
    Citation,
    Document,
    DocumentHit,
    FileResult,
    SearchMode,
    SentDocument,
    Usage,
)
from kb.types import DocKind as Kind

# Requests


class AskFilters(msgspec.Struct, forbid_unknown_fields=True):
    source_prefix: str | None = None
    kind: Kind | None = None


class AskRequest(msgspec.Struct, forbid_unknown_fields=True):
    question: Annotated[str, msgspec.Meta(min_length=1)]
    max_documents: Annotated[int, msgspec.Meta(ge=1)] | None = None
    filters: AskFilters | None = None


class BatchQuestion(msgspec.Struct, forbid_unknown_fields=True):
    question: Annotated[str, msgspec.Meta(min_length=1)]
    id: str | int | None = None
    filters: AskFilters | None = None


class BatchRequest(msgspec.Struct, forbid_unknown_fields=True):
    questions: Annotated[list[BatchQuestion], msgspec.Meta(min_length=1)]


# Responses


class ErrorBody(msgspec.Struct):
    type: str
    message: str


class ErrorResponse(msgspec.Struct):
    error: ErrorBody
    request_id: str | None


class CitationOut(msgspec.Struct):
    document_id: str
    title: str
    source: str
    cited_text: str
    page_start: int | None
    page_end: int | None
    char_start: int | None
    char_end: int | None
    file_id: str | None


class UsedDocument(msgspec.Struct):
    id: str
    title: str
    file_id: str | None
    score: float
    page_start: int
    page_end: int
    pages: int  # PDF pages in this window (0 for text and images)
    estimated_tokens: int


class UsageOut(msgspec.Struct):
    input_tokens: int
    output_tokens: int
    cache_write_tokens: int
    cache_read_tokens: int
    cost_usd: float | None


class Timings(msgspec.Struct):
    retrieve_ms: float
    model_ms: float


class AskResponse(msgspec.Struct):
    answer: str
    answered_by: str
    citations: list[CitationOut]
    documents: list[UsedDocument]
    usage: UsageOut
    model: str | None
    notice: str
    timings: Timings
    pages_sent: int  # PDF pages attached to the question
    estimated_input_tokens: int  # kb's estimate before sending (0 offline)
    estimated_cost_usd: float | None


class ChunkOut(msgspec.Struct):
    id: str
    text: str
    score: float
    page_start: int
    page_end: int
    char_start: int
    char_end: int


class DocumentOut(msgspec.Struct):
    id: str
    title: str
    kind: str
    mime_type: str
    size_bytes: int
    page_count: int
    chunk_count: int
    source: str
    sources: list[str]
    file_ids: list[str]
    file_store: str
    encrypted: bool
    notes: list[str]
    created_at: str


class SearchHitOut(msgspec.Struct):
    document: DocumentOut
    score: float
    chunks: list[ChunkOut]


class SearchResponse(msgspec.Struct):
    query: str
    mode: SearchMode
    k: int
    results: list[SearchHitOut]
    retrieve_ms: float


class DocumentList(msgspec.Struct):
    documents: list[DocumentOut]
    offset: int
    limit: int
    total: int


class FileResultOut(msgspec.Struct):
    path: str  # the source: "upload:<random id>/<safe filename>"
    status: str
    reason: str
    label: str
    doc_id: str | None
    pages: int
    chunks: int


class UploadResponse(msgspec.Struct):
    results: list[FileResultOut]
    counts: dict[str, int]
    failed: int
    seconds: float


class Health(msgspec.Struct):
    status: str


class Readiness(msgspec.Struct):
    ready: bool
    chroma: bool
    model: str | None
    answered_by: str | None
    documents: int | None
    detail: str = ""


# Conversions


def from_citation(c: Citation) -> CitationOut:
    return CitationOut(
        document_id=c.doc_id,
        title=c.title,
        source=c.source,
        cited_text=c.cited_text,
        page_start=c.page_start,
        page_end=c.page_end,
        char_start=c.char_start,
        char_end=c.char_end,
        file_id=c.file_id,
    )


def from_sent(d: SentDocument) -> UsedDocument:
    return UsedDocument(
        id=d.doc_id,
        title=d.title,
        file_id=d.file_id,
        score=d.score,
        page_start=d.page_start,
        page_end=d.page_end,
        pages=d.pages,
        estimated_tokens=d.estimated_tokens,
    )


def from_usage(u: Usage) -> UsageOut:
    return UsageOut(
        input_tokens=u.input_tokens,
        output_tokens=u.output_tokens,
        cache_write_tokens=u.cache_write_tokens,
        cache_read_tokens=u.cache_read_tokens,
        cost_usd=u.cost_usd,
    )


def from_answer(a: Answer, *, retrieve_ms: float, model_ms: float) -> AskResponse:
    return AskResponse(
        answer=a.text,
        answered_by=a.answered_by,
        citations=[from_citation(c) for c in a.citations],
        documents=[from_sent(d) for d in a.documents],
        usage=from_usage(a.usage),
        model=a.model,
        notice=a.notice,
        timings=Timings(retrieve_ms=round(retrieve_ms, 2), model_ms=round(model_ms, 2)),
        pages_sent=a.pages_sent,
        estimated_input_tokens=a.estimated_input_tokens,
        estimated_cost_usd=a.estimated_cost_usd,
    )


def from_document(d: Document) -> DocumentOut:
    return DocumentOut(
        id=d.id,
        title=d.title,
        kind=d.kind,
        mime_type=d.mime_type,
        size_bytes=d.size_bytes,
        page_count=d.page_count,
        chunk_count=d.chunk_count,
        source=d.source,
        sources=list(d.sources),
        file_ids=[f.file_id for f in d.files],
        file_store=d.file_store,
        encrypted=d.encrypted,
        notes=list(d.notes),
        created_at=d.created_at,
    )


def from_chunk(c: Chunk, score: float) -> ChunkOut:
    return ChunkOut(
        id=c.id,
        text=c.text,
        score=score,
        page_start=c.page_start,
        page_end=c.page_end,
        char_start=c.char_start,
        char_end=c.char_end,
    )


def from_hit(h: DocumentHit) -> SearchHitOut:
    return SearchHitOut(
        document=from_document(h.document),
        score=h.score,
        chunks=[from_chunk(ch.chunk, ch.score) for ch in h.chunks],
    )


def from_file_result(r: FileResult) -> FileResultOut:
    return FileResultOut(
        path=r.path,
        status=r.status,
        reason=r.reason,
        label=r.label,
        doc_id=r.doc_id,
        pages=r.pages,
        chunks=r.chunks,
    )


class BatchOut(msgspec.Struct):
    """A Message Batch of a job: its id at Anthropic (null while it is being created)."""

    id: str | None
    status: str
    requests: int
    request_counts: dict[str, int]


class BatchJobOut(msgspec.Struct):
    id: str
    status: str  # in_progress | ended
    answered_by: str
    model: str
    created_at: str
    questions: int
    answered: int
    errors: int
    batches: list[BatchOut]


def from_job_status(j: JobStatus) -> BatchJobOut:
    return BatchJobOut(
        id=j.id,
        status=j.status,
        answered_by=j.answered_by,
        model=j.model,
        created_at=j.created_at,
        questions=j.questions,
        answered=j.answered,
        errors=j.errors,
        batches=[BatchOut(b.id, b.status, len(b.custom_ids), dict(b.counts)) for b in j.batches],
    )

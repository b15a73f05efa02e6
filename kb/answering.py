"""Answering: the `Answerer` protocol and the offline extractive implementation.

The Claude implementation lives in `kb/claude.py`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Protocol

from kb.types import (
    Answer,
    AnswerDone,
    AnswerEvent,
    Chunk,
    Citation,
    CitationDelta,
    Document,
    DocumentHit,
    SentDocument,
    TextDelta,
)

if TYPE_CHECKING:
    from kb.settings import Settings


class Answerer(Protocol):
    name: str  # "claude" or "extractive"

    def answer(self, question: str, hits: Sequence[DocumentHit]) -> Answer: ...

    def stream(self, question: str, hits: Sequence[DocumentHit]) -> Iterator[AnswerEvent]:
        """TextDelta and CitationDelta events as they arrive, then one AnswerDone."""
        ...


NO_MODEL_NOTICE = (
    "No model was called: these are the best-matching passages from your documents, "
    "not an answer. Set ANTHROPIC_API_KEY to have Claude answer with citations."
)


class ExtractiveAnswerer:
    """Offline answering: the hits' best chunks as passages, each with its citation."""

    name = "extractive"
    passages_per_document = 2

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def answer(self, question: str, hits: Sequence[DocumentHit]) -> Answer:
        ranked = sorted(hits, key=lambda h: -h.score)[: self._settings.max_documents]
        citations: list[Citation] = []
        lines: list[str] = []
        for hit in ranked:
            doc = hit.document
            for chunk_hit in hit.chunks[: self.passages_per_document]:
                chunk = chunk_hit.chunk
                citation = _citation(doc, chunk)
                citations.append(citation)
                lines.append(f"[{len(citations)}] {doc.title} ({_where(citation)}): {chunk.text}")
        text = "\n\n".join(lines) if lines else "No passages in the knowledge base match."
        documents = tuple(
            SentDocument(h.document.id, h.document.title, h.score, None) for h in ranked
        )
        return Answer(text, tuple(citations), documents, "extractive", notice=NO_MODEL_NOTICE)

    def stream(self, question: str, hits: Sequence[DocumentHit]) -> Iterator[AnswerEvent]:
        answer = self.answer(question, hits)
        yield TextDelta(answer.text)
        for citation in answer.citations:
            yield CitationDelta(citation)
        yield AnswerDone(answer)


def _citation(doc: Document, chunk: Chunk) -> Citation:
    if doc.kind == "pdf":
        return Citation(
            doc.id,
            doc.title,
            doc.source,
            chunk.text,
            page_start=chunk.page_start,
            page_end=chunk.page_end,
        )
    return Citation(
        doc.id,
        doc.title,
        doc.source,
        chunk.text,
        char_start=chunk.char_start,
        char_end=chunk.char_end,
    )


def _where(citation: Citation) -> str:
    if citation.page_start is None:
        return f"chars {citation.char_start}-{citation.char_end}"
    if citation.page_start == citation.page_end:
        return f"p. {citation.page_start}"
    return f"pp. {citation.page_start}-{citation.page_end}"

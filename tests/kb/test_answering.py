"""The extractive answerer: passages with citations, and plainly not a model."""

from __future__ import annotations

from kb.answering import ExtractiveAnswerer
from kb.settings import Settings
from kb.types import (
    AnswerDone,
    Chunk,
    ChunkHit,
    CitationDelta,
    Document,
    DocumentHit,
    Part,
    TextDelta,
)


def _doc(doc_id: str, kind: str, title: str, pages: int = 1) -> Document:
    return Document(
        id=doc_id,
        title=title,
        kind=kind,  # type: ignore[arg-type]
        mime_type="application/pdf" if kind == "pdf" else "text/plain",
        size_bytes=100,
        page_count=pages,
        chunk_count=1,
        sources=(f"/docs/{title}",),
        parts=(Part(0, 1, pages),),
    )


def _hits() -> list[DocumentHit]:
    pdf = _doc("a" * 64, "pdf", "report.pdf", pages=12)
    txt = _doc("b" * 64, "text", "notes.txt")
    pdf_chunk = Chunk(pdf.id, 2, 0, "Revenue grew 12% in the third quarter.", 11, 12)
    txt_chunk = Chunk(txt.id, 0, 0, "The cable was laid in 1901.", 1, 1, 40, 67)
    return [
        DocumentHit(txt, 0.4, (ChunkHit(txt_chunk, 0.4),)),
        DocumentHit(pdf, 0.9, (ChunkHit(pdf_chunk, 0.9),)),
    ]


def test_passages_with_citations_and_a_plain_notice() -> None:
    answer = ExtractiveAnswerer(Settings()).answer("How much did revenue grow?", _hits())

    assert answer.answered_by == "extractive"
    assert answer.model is None
    assert "No model was called" in answer.notice and "not an answer" in answer.notice
    first, second = answer.citations
    assert (first.title, first.page_start, first.page_end) == ("report.pdf", 11, 12)
    assert first.cited_text == "Revenue grew 12% in the third quarter."
    assert first.source == "/docs/report.pdf" and first.char_start is None
    assert (second.char_start, second.char_end, second.page_start) == (40, 67, None)
    assert answer.text.index("Revenue grew") < answer.text.index("cable was laid")
    assert "pp. 11-12" in answer.text
    assert [d.doc_id for d in answer.documents] == ["a" * 64, "b" * 64]
    assert answer.usage.input_tokens == 0 and answer.usage.cost_usd is None


def test_stream_yields_the_same_answer() -> None:
    answerer = ExtractiveAnswerer(Settings())
    events = list(answerer.stream("revenue", _hits()))
    done = events[-1]
    assert isinstance(done, AnswerDone)
    assert done.answer == answerer.answer("revenue", _hits())
    assert [e.citation for e in events if isinstance(e, CitationDelta)] == list(
        done.answer.citations
    )
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == done.answer.text


def test_no_hits_still_says_no_model() -> None:
    answer = ExtractiveAnswerer(Settings()).answer("anything", [])
    assert answer.citations == () and answer.documents == ()
    assert "No model was called" in answer.notice

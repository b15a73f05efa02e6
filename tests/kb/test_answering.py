"""The extractive answerer: the few sentences that best answer the question, each cited to its
page or character range, and plainly not a model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ingest import ingest_paths
from kb.answering import MAX_CHARS, MAX_SENTENCES, ExtractiveAnswerer
from kb.chunking import chunk_pages
from kb.settings import Settings
from kb.types import (
    AnswerDone,
    Chunk,
    ChunkHit,
    CitationDelta,
    Document,
    DocumentHit,
    Page,
    Part,
    TextDelta,
)

MANUAL = """# Harbor 300 dehumidifier

## Filters

The air filter sits behind the front grille. Use only the HF-12 pleated filter (class G4).
Replace the air filter every 250 operating hours, or sooner in dusty rooms.

## Error codes

- E1: room humidity sensor fault, check the sensor cable at connector J4.
- E4: high refrigerant pressure, clean the condenser coil and check the fan.

## Storage

Store the unit upright in a dry room. Drain the condensate tank before moving it.
"""


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


def _hit(doc: Document, *chunks: Chunk, score: float = 0.5) -> DocumentHit:
    return DocumentHit(doc, score, tuple(ChunkHit(c, score) for c in chunks))


def _hits() -> list[DocumentHit]:
    pdf = _doc("a" * 64, "pdf", "report.pdf", pages=12)
    txt = _doc("b" * 64, "text", "notes.txt")
    pdf_text = "Results by quarter\nRevenue grew 12% in the third quarter of the year."
    txt_text = "Line history. The cable was laid in 1901 by the harbour board."
    return [
        _hit(txt, Chunk(txt.id, 0, 0, txt_text, 1, 1, 40, 40 + len(txt_text)), score=0.4),
        _hit(pdf, Chunk(pdf.id, 2, 0, pdf_text, 11, 11), score=0.9),
    ]


def test_best_sentences_with_citations_and_a_plain_notice() -> None:
    answer = ExtractiveAnswerer(Settings()).answer("How much did revenue grow?", _hits())

    assert answer.answered_by == "extractive"
    assert answer.model is None
    assert "No model was called" in answer.notice and "not an answer" in answer.notice
    first, second = answer.citations
    assert first.cited_text == "Revenue grew 12% in the third quarter of the year."
    assert (first.title, first.page_start, first.page_end) == ("report.pdf", 11, 11)
    assert first.source == "/docs/report.pdf" and first.char_start is None
    assert second.cited_text == "The cable was laid in 1901 by the harbour board."
    assert (second.char_start, second.char_end, second.page_start) == (54, 102, None)
    assert answer.text.splitlines() == [
        "[1] Revenue grew 12% in the third quarter of the year. — report.pdf, p. 11",
        "[2] The cable was laid in 1901 by the harbour board. — notes.txt, chars 54-102",
    ]  # "Results by quarter" and "Line history." are too short to be an answer
    assert [d.doc_id for d in answer.documents] == ["a" * 64, "b" * 64]
    assert all(d.file_id is None for d in answer.documents)
    assert answer.usage.input_tokens == 0 and answer.usage.cost_usd is None


def test_the_sentence_that_answers_comes_first(embedder: Any) -> None:
    doc = _doc("c" * 64, "text", "manual.md")
    chunks = chunk_pages(doc.id, 0, [Page(1, MANUAL)], embedder.token_offsets, 40, 10)
    assert len(chunks) > 2
    hit = _hit(doc, *chunks[:3])
    answer = ExtractiveAnswerer(Settings(), embedder).answer(
        "How often should the air filter be replaced?", [hit]
    )

    assert answer.citations[0].cited_text.startswith("Replace the air filter every 250")
    assert answer.text.startswith("[1] Replace the air filter every 250 operating hours")
    for citation in answer.citations:  # character ranges slice the original exactly
        assert citation.char_start is not None and citation.char_end is not None
        assert MANUAL[citation.char_start : citation.char_end] == citation.cited_text


def test_a_sentence_is_cited_to_its_own_page(embedder: Any) -> None:
    doc = _doc("d" * 64, "pdf", "harbor.pdf", pages=4)
    pages = [
        Page(3, "Safety\nAlways disconnect the unit from mains power before opening a panel."),
        Page(4, "Filters\nReplace the air filter every 250 operating hours of use."),
    ]
    (chunk,) = chunk_pages(doc.id, 0, pages, embedder.token_offsets, 200, 40)
    assert (chunk.page_start, chunk.page_end) == (3, 4)
    answerer = ExtractiveAnswerer(Settings(), embedder)

    answer = answerer.answer("How often is the air filter replaced?", [_hit(doc, chunk)])
    first, second = answer.citations
    assert first.cited_text.startswith("Replace the air filter")
    assert (first.page_start, first.page_end) == (4, 4)
    assert second.cited_text.startswith("Always disconnect")
    assert (second.page_start, second.page_end) == (3, 3)
    assert "— harbor.pdf, p. 4" in answer.text.splitlines()[0]

    # A blank line inside a page: the sentence after it may be on either page, and says so.
    text = "Always switch the unit off first.\n\nThen open the front panel carefully.\n\n"
    text += "Replace the air filter every 250 hours."
    ambiguous = Chunk(doc.id, 0, 0, text, 3, 4)
    pages_of = {
        c.cited_text[:4]: (c.page_start, c.page_end)
        for c in answerer.answer("air filter", [_hit(doc, ambiguous)]).citations
    }
    assert pages_of == {"Alwa": (3, 3), "Then": (3, 4), "Repl": (4, 4)}


def test_text_documents_cite_exact_character_ranges(
    knowledge_base: Any,
    tmp_path: Path,
) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "harbor.md").write_text(MANUAL)
    (folder / "bread.md").write_text("# Bread\n\nFeed the sourdough starter every day at noon.\n")
    ingest_paths(knowledge_base, [folder])
    question = "What does error E4 mean?"
    answer = knowledge_base.answerer.answer(question, knowledge_base.retriever.search(question))

    assert answer.citations[0].cited_text.startswith("E4: high refrigerant pressure")
    assert answer.text.startswith("[1] E4: high refrigerant pressure")
    for citation in answer.citations:
        original = Path(citation.source).read_text()
        assert original[citation.char_start : citation.char_end] == citation.cited_text


def test_at_most_the_sentence_limit_and_no_duplicates() -> None:
    doc = _doc("e" * 64, "text", "tips.txt")
    sentences = [f"Tip number {n} says to water the tomatoes early." for n in range(12)]
    text = " ".join(sentences)
    half = len(text) // 2 + 20  # the chunks overlap, as real chunks do
    first = Chunk(doc.id, 0, 0, text[:half], 1, 1, 0, half)
    second = Chunk(doc.id, 0, 1, text[half - 60 :], 1, 1, half - 60, len(text))
    repeated = Chunk(doc.id, 0, 2, text, 1, 1, 0, len(text))
    hit = _hit(doc, first, second, repeated)

    answer = ExtractiveAnswerer(Settings()).answer("water the tomatoes", [hit])
    assert len(answer.citations) == ExtractiveAnswerer.sentences == 3
    many = ExtractiveAnswerer(Settings())
    many.sentences = 50
    cited = [c.cited_text for c in many.answer("water the tomatoes", [hit]).citations]
    assert len(cited) == MAX_SENTENCES
    assert len(set(cited)) == len(cited)
    assert all(c in sentences for c in cited)  # whole sentences, not chunk-edge fragments


def test_no_sentence_falls_back_to_the_best_passage_shortened() -> None:
    doc = _doc("f" * 64, "pdf", "table.pdf", pages=2)
    text = "\n".join(f"{n} | {n * 7} | {n * 13}" for n in range(100))
    answer = ExtractiveAnswerer(Settings()).answer(
        "numbers", [_hit(doc, Chunk(doc.id, 0, 0, text, 2, 2))]
    )
    (citation,) = answer.citations
    assert text.startswith(citation.cited_text) and len(citation.cited_text) <= MAX_CHARS
    assert answer.text.startswith("[1] 0; 0; 0 1; 7; 13") and answer.text.endswith(
        "… — table.pdf, p. 2"
    )


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
    assert answer.text == "No passages in the knowledge base match."
    assert "No model was called" in answer.notice

"""Choosing documents within the request budget, citation page mapping, and pricing."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from kb.anthropic.request import PDF_PAGE_TOKENS, Pick, Plan, map_citation, select
from kb.errors import ConfigError
from kb.pricing import estimate_cost, parse_price_table, prices_for
from kb.settings import Settings
from kb.types import Chunk, ChunkHit, Document, DocumentHit, Part, RemoteFile, Usage


def _pdf(doc_id: str, parts: list[tuple[int, int]]) -> Document:
    return Document(
        id=doc_id,
        title=f"t{doc_id[:2]}",
        kind="pdf",
        mime_type="application/pdf",
        size_bytes=1000,
        page_count=parts[-1][1],
        chunk_count=3,
        sources=(f"/d/{doc_id[:2]}",),
        parts=tuple(Part(i, s, e) for i, (s, e) in enumerate(parts)),
        files=tuple(RemoteFile(f"file_{doc_id[:2]}{i}", i, s, e) for i, (s, e) in enumerate(parts)),
        file_store="anthropic",
    )


def _hit(doc: Document, score: float, parts: list[int]) -> DocumentHit:
    """A hit whose chunks lie on the first page of each given part, best first."""
    chunks = tuple(
        ChunkHit(
            Chunk(doc.id, 0, i, "x", doc.parts[p].page_start, doc.parts[p].page_start),
            score - i * 0.01,
        )
        for i, p in enumerate(parts)
    )
    return DocumentHit(doc, score, chunks)


def _chunk_hit(doc: Document, score: float, pages: tuple[int, int], part: int = 0) -> ChunkHit:
    return ChunkHit(Chunk(doc.id, part, 0, "x", *pages), score)


def _sent(picks: list[Pick]) -> list[tuple[str, int, int]]:
    return [(p.document.id[:2], p.part.page_start, p.part.page_end) for p in picks]


def test_windows_by_chunk_score_within_page_budget_in_canonical_order() -> None:
    big = _pdf("ff" * 32, [(1, 5), (6, 10), (11, 12)])
    other = _pdf("11" * 32, [(1, 4)])
    settings = Settings(max_request_pages=7, pdf_window_pages=5)
    picks = select("q", [_hit(big, 0.9, [2, 0]), _hit(other, 0.8, [0])], settings)
    # window 11-12 (2 pages) then 1-5 (5 pages) fill the budget; `other` (4 pages) does not fit
    assert _sent(picks) == [("ff", 1, 5), ("ff", 11, 12)]
    assert sum(p.pages for p in picks) <= 7


def test_windows_are_taken_across_documents_by_chunk_score() -> None:
    a = _pdf("aa" * 32, [(1, 10), (11, 20), (21, 30)])
    b = _pdf("bb" * 32, [(1, 10), (11, 20)])
    hits = [
        DocumentHit(a, 0.9, (_chunk_hit(a, 0.9, (25, 25)), _chunk_hit(a, 0.5, (2, 2)))),
        DocumentHit(b, 0.8, (_chunk_hit(b, 0.8, (12, 12)),)),
    ]
    picks = select("q", hits, Settings(max_request_pages=20))
    # a's 21-30 (0.9), then b's 11-20 (0.8); a's 1-10 (0.5) is over the 20-page budget
    assert _sent(picks) == [("aa", 21, 30), ("bb", 11, 20)]
    assert {p.document.id[:2]: p.score for p in picks} == {"aa": 0.9, "bb": 0.8}


def test_a_chunk_across_a_window_boundary_brings_both_windows() -> None:
    doc = _pdf("cc" * 32, [(1, 10), (11, 20), (21, 30)])
    hit = DocumentHit(doc, 0.9, (_chunk_hit(doc, 0.9, (10, 11)),))
    assert _sent(select("q", [hit], Settings())) == [("cc", 1, 10), ("cc", 11, 20)]
    # when both do not fit, the window the chunk starts in is still sent
    tight = Settings(max_request_pages=10)
    assert _sent(select("q", [hit], tight)) == [("cc", 1, 10)]


def test_the_best_window_is_always_sent_when_anything_was_found() -> None:
    doc = _pdf("dd" * 32, [(p, p + 9) for p in range(1, 500, 10)])
    hit = DocumentHit(doc, 0.3, (_chunk_hit(doc, 0.3, (487, 487)),))
    for settings in (Settings(), Settings(max_request_pages=10), Settings(max_documents=1)):
        assert _sent(select("q", [hit], settings)) == [("dd", 481, 490)]
        assert select("a longer question " * 50, [hit], settings)


def test_chunks_of_an_older_ingest_map_onto_windows_by_page() -> None:
    """Chunks written with 100-page parts carry `part` 1 and original pages: the pages decide."""
    doc = _pdf("ee" * 32, [(p, p + 9) for p in range(1, 150, 10)])
    hit = DocumentHit(doc, 0.7, (_chunk_hit(doc, 0.7, (123, 123), part=1),))
    assert _sent(select("q", [hit], Settings())) == [("ee", 121, 130)]


def test_settings_keep_one_window_within_the_budget() -> None:
    with pytest.raises(ConfigError, match="KB_PDF_WINDOW_PAGES"):
        Settings(pdf_window_pages=40, max_request_pages=30)
    with pytest.raises(ConfigError, match="KB_MAX_REQUEST_TOKENS"):
        Settings(pdf_window_pages=20, max_request_tokens=30_000)
    settings = Settings(pdf_window_pages=20, max_request_tokens=42_000)
    window = settings.pdf_window_pages * PDF_PAGE_TOKENS
    assert window + settings.max_question_chars // 2 + 500 <= settings.max_request_tokens


def test_document_count_and_token_budget() -> None:
    docs = [_pdf(f"{n:02d}" * 32, [(1, 3)]) for n in range(10, 16)]
    hits = [_hit(d, 1 - i / 10, [0]) for i, d in enumerate(docs)]
    assert len(select("q", hits, Settings(max_documents=2))) == 2
    budget = Settings(pdf_window_pages=3, max_request_tokens=500 + 2 * 3 * PDF_PAGE_TOKENS + 100)
    assert len(select("q", hits, budget)) == 2
    assert select("q", [], Settings()) == []


def test_page_location_is_mapped_to_original_inclusive_pages() -> None:
    doc = _pdf("ff" * 32, [(1, 5), (6, 10), (11, 12)])
    pick = Pick(doc, doc.parts[2], 1.0)
    plan = Plan("q", [pick], [pick])
    cited = SimpleNamespace(
        type="page_location",
        document_index=0,
        cited_text="fact",
        start_page_number=1,
        end_page_number=2,
    )
    c = map_citation(plan, cited)
    assert c is not None and (c.page_start, c.page_end) == (11, 11)
    assert c.file_id == "file_ff2" and c.doc_id == doc.id
    cited.end_page_number = 3
    c = map_citation(plan, cited)
    assert c is not None and (c.page_start, c.page_end) == (11, 12)
    cited.document_index = 1
    assert map_citation(plan, cited) is None


def test_pricing_defaults_and_overrides() -> None:
    usage = Usage(1_000_000, 100_000, 0, 1_000_000)
    assert estimate_cost("claude-sonnet-5-5", usage) == pytest.approx(3.0 + 1.5 + 0.3)
    table = "claude-sonnet-5-5=1,2,3,4"
    assert prices_for("claude-sonnet-5-5", table) == (1.0, 2.0, 3.0, 4.0)
    assert estimate_cost("gpt-x", usage) is None
    with pytest.raises(ConfigError):
        parse_price_table("claude=1,2")

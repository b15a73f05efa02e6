"""Choosing documents within the request budget, citation page mapping, and pricing."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from kb.claude import PDF_PAGE_TOKENS, Pick, Plan, map_citation, select
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
    chunks = tuple(
        ChunkHit(
            Chunk(doc.id, p, 0, "x", doc.parts[p].page_start, doc.parts[p].page_start),
            score - i * 0.01,
        )
        for i, p in enumerate(parts)
    )
    return DocumentHit(doc, score, chunks)


def test_only_hit_parts_within_page_budget_in_canonical_order() -> None:
    big = _pdf("ff" * 32, [(1, 5), (6, 10), (11, 12)])
    other = _pdf("11" * 32, [(1, 4)])
    settings = Settings(max_request_pages=7)
    picks = select("q", [_hit(big, 0.9, [2, 0]), _hit(other, 0.8, [0])], settings)
    # part 2 (2 pages) then part 0 (5 pages) fill the budget; `other` (4 pages) does not fit
    assert [(p.document.id[:2], p.part.index) for p in picks] == [("ff", 0), ("ff", 2)]
    assert sum(p.part.page_end - p.part.page_start + 1 for p in picks) <= 7


def test_document_count_and_token_budget() -> None:
    docs = [_pdf(f"{n:02d}" * 32, [(1, 3)]) for n in range(10, 16)]
    hits = [_hit(d, 1 - i / 10, [0]) for i, d in enumerate(docs)]
    assert len(select("q", hits, Settings(max_documents=2))) == 2
    budget = Settings(max_request_tokens=2 * 3 * PDF_PAGE_TOKENS + 1000)
    assert len(select("q", hits, budget)) == 2
    assert select("q", hits, Settings(max_request_tokens=100)) == []


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

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from ingest import ingest_paths
from kb.errors import InvalidInput
from kb.retrieval import _fuse

DOCS = {
    "pumps.txt": "Order replacement impeller QX-7781B for the centrifugal pump in bay four.",
    "water.txt": "Centrifugal pumps move water through the cooling circuit of the plant.",
    "motors.txt": "Electric motors drive the pumps; check bearings and alignment every month.",
    "garden.txt": "Tomatoes grow best in full sun with regular watering and rich soil.",
    "ships.txt": "Container ships such as the Kjellbergsund carry goods between large ports.",
}


@pytest.fixture
def kb(knowledge_base: Any, tmp_path: Path) -> Any:
    folder = tmp_path / "docs"
    folder.mkdir()
    for name, text in DOCS.items():
        (folder / name).write_text(text, encoding="utf-8")
    ingest_paths(knowledge_base, [folder])
    knowledge_base.folder = folder
    return knowledge_base


def titles(hits: list[Any]) -> list[str]:
    return [h.document.title for h in hits]


def test_bm25_finds_an_exact_rare_term_that_dense_misses(kb: Any) -> None:
    # the rare name outweighs the common word for BM25; dense follows "pump maintenance"
    query = "Kjellbergsund pump maintenance"
    assert titles(kb.retriever.search(query, k=1, mode="bm25")) == ["ships"]
    assert titles(kb.retriever.search(query, k=1, mode="dense")) != ["ships"]
    assert "ships" in titles(kb.retriever.search(query, k=2, mode="hybrid"))


def test_dense_finds_a_paraphrase_without_shared_words(kb: Any) -> None:
    assert titles(
        kb.retriever.search("vessels transporting cargo overseas", k=1, mode="dense")
    ) == ["ships"]


def test_hits_are_documents_with_their_best_chunks(kb: Any) -> None:
    hits = kb.retriever.search("centrifugal pump", k=3, mode="hybrid", chunks_per_doc=2)
    assert len(hits) == 3
    assert len({h.document.id for h in hits}) == 3
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    for hit in hits:
        assert 0.0 <= hit.score <= 1.0
        assert 1 <= len(hit.chunks) <= 2
        assert all(c.chunk.doc_id == hit.document.id for c in hit.chunks)
    assert set(titles(hits)[:2]) == {"pumps", "water"}


def test_defaults_come_from_settings(kb: Any) -> None:
    hits = kb.retriever.search("pumps")
    assert len(hits) == kb.settings.search_k
    assert kb.settings.search_mode == "hybrid"


def test_results_follow_updates_and_removals(kb: Any) -> None:
    path = kb.folder / "garden.txt"
    path.write_text("Zucchini plants sprawl; give them room and mulch.", encoding="utf-8")
    ingest_paths(kb, [kb.folder])
    for mode in ("bm25", "hybrid"):
        assert titles(kb.retriever.search("zucchini mulch", k=1, mode=mode)) == ["garden"]
    assert "garden" not in titles(kb.retriever.search("tomatoes", k=5, mode="bm25"))

    (doc,) = kb.index.find_by_source(str(path.resolve()))
    kb.remove(doc.id)
    for mode in ("dense", "bm25", "hybrid"):
        assert "garden" not in titles(kb.retriever.search("zucchini mulch", k=5, mode=mode))


def test_concurrent_searches_agree(kb: Any) -> None:
    queries = ["QX-7781B impeller", "cooling water", "bearings", "ports"] * 4
    expected = [titles(kb.retriever.search(q, k=3)) for q in queries]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda q: titles(kb.retriever.search(q, k=3)), queries))
    assert got == expected


@pytest.mark.parametrize(
    ("query", "options"),
    [
        ("pumps", {"mode": "fuzzy"}),
        ("pumps", {"k": 0}),
        ("pumps", {"k": 100_000}),
        ("pumps", {"k": "5"}),
        ("   ", {}),
        ("pumps", {"chunks_per_doc": 0}),
    ],
)
def test_bad_input_is_invalid_input(kb: Any, query: str, options: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput):
        kb.retriever.search(query, **options)


def test_fusion_normalises_each_mode() -> None:
    fused = _fuse({"a": 0.9, "b": 0.5}, {"b": 20.0, "c": 10.0})
    assert fused["b"] == pytest.approx(0.5 * 0.0 + 0.5 * 1.0)
    assert fused["a"] == pytest.approx(0.5)
    assert fused["c"] == pytest.approx(0.0)


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_second_pass_ranks_a_documents_own_chunks(
    settings: Any, embedder: Any, tmp_path: Path, mode: str
) -> None:
    """Whatever chunks the first pass brought (here: the wrong page), the second searches the
    document's own chunks: the page that answers comes first, and only that document's."""
    from kb.service import open_kb
    from kb.types import ChunkHit, DocumentHit
    from standin.pdfs import make_pdf

    folder = tmp_path / "docs"
    pump = "Centrifugal pump maintenance: check the impeller, seals and bearings of the pump."
    pages = [f"Section {n}. {pump}" for n in range(1, 13)]
    pages[9] = "Pump seals: the Kjellbergsund impeller seal is replaced every spring."
    make_pdf(folder / "manual.pdf", pages, title="Pump manual")
    (folder / "note.txt").write_text("The Kjellbergsund impeller seal is replaced in spring.")
    kb = open_kb(settings.replace(pdf_window_pages=1), embedder=embedder)  # a chunk a page
    try:
        ingest_paths(kb, [folder])
        (manual,) = [d for d in kb.index.documents() if d.kind == "pdf"]
        first_page = next(c for c in kb.index.chunks(manual.id) if c.page_start == 1)
        hit = DocumentHit(manual, 0.8, (ChunkHit(first_page, 0.8),))
        query = "When is the Kjellbergsund seal replaced?"
        (second,) = kb.retriever.best_chunks(query, [hit], mode=mode, chunks_per_doc=4)
    finally:
        kb.close()
    assert second.document == manual and second.score == 0.8
    assert second.chunks[0].chunk.page_start == 10
    assert len(second.chunks) == 4 and {c.chunk.doc_id for c in second.chunks} == {manual.id}
    scores = [c.score for c in second.chunks]
    assert scores == sorted(scores, reverse=True) and all(0 < s <= 0.8 for s in scores)


def test_pages_of_a_pdf_compete_one_chunk_each_and_two_matches_outweigh_one() -> None:
    from kb.retrieval import PAGE_POOL, _best_per_page
    from kb.types import Chunk

    def chunk(n: int, page: int) -> Chunk:
        return Chunk("d", 0, n, f"text {n}", page, page)

    chunks = {c.id: c for c in [chunk(0, 3), chunk(1, 3), chunk(2, 7), chunk(3, 9), chunk(4, 9)]}
    within = {"d:0:0": 0.9, "d:0:1": 0.8, "d:0:2": 1.0, "d:0:3": 0.7, "d:0:4": 0.1}
    ranked = _best_per_page(within, chunks)
    assert [chunks[c].page_start for c, _ in ranked] == [3, 7, 9]  # 0.9 + 0.4 beats 1.0 alone
    assert [c for c, _ in ranked] == ["d:0:0", "d:0:2", "d:0:3"]  # each page's best chunk
    assert ranked[0][1] == 1.0
    assert ranked[1][1] == pytest.approx(1.0 / (0.9 + PAGE_POOL * 0.8))


def test_a_text_document_keeps_several_chunks_of_its_one_page(kb: Any) -> None:
    long_note = kb.folder / "long.txt"
    long_note.write_text(" ".join(f"Pump note {n}: the impeller wears." for n in range(200)))
    ingest_paths(kb, [long_note])
    (hit,) = [
        h
        for h in kb.retriever.search("impeller wears", k=6)
        if h.document.kind == "text" and h.document.title == "long"
    ]
    assert len(hit.chunks) == 3 and {c.chunk.page_start for c in hit.chunks} == {1}


@pytest.mark.parametrize("weight", [None, 0.0])
def test_a_page_whose_heading_names_the_question_outranks_prose_about_it(
    settings: Any, embedder: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, weight: Any
) -> None:
    """The statement a question names is a table under its heading; prose elsewhere uses the
    same words more often. The heading, scored as a field of its own, brings the table's page
    first; without it (weight 0) the prose wins, which is what this test guards against."""
    import kb.retrieval
    from kb.service import open_kb
    from standin.pdfs import make_pdf

    if weight is not None:
        monkeypatch.setattr(kb.retrieval, "HEADING_WEIGHT", weight)
    prose = (
        "during the year the company reviewed its operations, its stores and its staff, "
        "and the board met four times to discuss the plans for the coming seasons"
    )
    pages = [f"page {n}: {prose}." for n in range(1, 13)]
    pages[2] = (
        "the cash flow statement and the cash flows of the company are discussed by the board; "
        "cash flow from operations and the statement of cash flows are reviewed every quarter."
    )
    pages[7] = (
        "Consolidated Statement of Cash Flows\n(In millions)\n"
        "Net income 1,204 1,118\nDepreciation 310 295\nNet cash from operating activities "
        "1,688 1,540\nPurchases of equipment (402) (377)\nDividends paid (250) (240)"
    )
    make_pdf(tmp_path / "docs" / "report.pdf", pages, title="Annual report")
    knowledge_base = open_kb(settings.replace(pdf_window_pages=1), embedder=embedder)
    try:
        ingest_paths(knowledge_base, [tmp_path / "docs"])
        (hit,) = knowledge_base.search(
            "What does the cash flow statement show?",
            k=1,
            chunks_per_doc=3,
        )
    finally:
        knowledge_base.close()
    first = hit.chunks[0].chunk.page_start
    assert first == (8 if weight is None else 3)


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_many_questions_retrieved_together_get_what_each_gets_alone(kb: Any, mode: str) -> None:
    """`search_many` embeds the questions together and sends Chroma one query; each question's
    documents, chunks and scores are those of its own search, filters applied per question."""
    from kb.types import SearchFilters

    queries = ["centrifugal pump", "ships carrying goods", "tomatoes in the sun", "QX-7781B"]
    filters = [None, SearchFilters(source_prefix=str(kb.folder / "ships")), None, SearchFilters()]
    together = kb.search_many(queries, filters, k=3, mode=mode, chunks_per_doc=2)
    alone = [
        kb.search(q, k=3, mode=mode, filters=f, chunks_per_doc=2)
        for q, f in zip(queries, filters, strict=True)
    ]

    def ids(hits: list[Any]) -> list[Any]:
        return [(h.document.id, [c.chunk.id for c in h.chunks]) for h in hits]

    def scores(hits: list[Any]) -> list[float]:
        return [s for h in hits for s in (h.score, *(c.score for c in h.chunks))]

    assert [ids(h) for h in together] == [ids(h) for h in alone]
    for many, one in zip(together, alone, strict=True):  # padded in a batch: float noise only
        assert scores(many) == pytest.approx(scores(one), abs=1e-5)
    assert titles(together[1]) == ["ships"]  # the filter kept only what it names
    assert kb.search_many([], [], mode=mode) == []

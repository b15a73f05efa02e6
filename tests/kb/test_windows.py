"""Long PDFs as page windows: planned and uploaded once, a question sends the windows around its
answer, citations come back in original pages, and older 100-page parts move to windows."""

from __future__ import annotations

import random
import string
from pathlib import Path
from typing import Any

import pytest

from ingest import ingest_paths
from kb.service import open_kb
from standin.pdfs import make_pdf

PAGES = 260
FACT_PAGE = 237
FACT = "The lighthouse keeper Mirabel Quint painted the tower green in 1887."
QUESTION = "Who painted the lighthouse tower green?"
WINDOWS = {"pdf_window_pages": 10, "max_request_pages": 30}
OLD_PARTS = {"pdf_window_pages": 100, "max_request_pages": 100, "max_request_tokens": 300_000}


def _filing(root: Path) -> Path:
    rng = random.Random(7)
    words = ["".join(rng.choice(string.ascii_lowercase) for _ in range(6)) for _ in range(400)]
    pages = [f"Page {n}. " + " ".join(rng.choice(words) for _ in range(40)) for n in range(PAGES)]
    pages[FACT_PAGE - 1] += " " + FACT
    return make_pdf(root / "annual-report.pdf", pages, title="Harbour annual report")


def _uploads(standin: Any) -> list[Any]:
    return standin.requests("POST", "/v1/files")


def _ask(kb: Any) -> Any:
    return kb.answerer.answer(QUESTION, kb.retriever.search(QUESTION))


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    _filing(tmp_path / "corpus")
    return tmp_path / "corpus"


def test_windows_are_uploaded_once_and_a_question_sends_the_answer_pages(
    online_settings: Any, embedder: Any, standin: Any, corpus: Path
) -> None:
    settings = online_settings.replace(**WINDOWS)
    standin.state.max_pdf_pages = settings.max_request_pages  # never reached
    kb = open_kb(settings, embedder=embedder)
    try:
        assert ingest_paths(kb, [corpus]).failed == 0
        (doc,) = kb.index.documents()
        assert [(p.page_start, p.page_end) for p in doc.parts][:2] == [(1, 10), (11, 20)]
        assert doc.parts[-1].page_end == PAGES and len(doc.parts) == 26
        assert len(_uploads(standin)) == len(doc.files) == 26
        names = {f.filename for f in kb.files.list()}
        assert any(n.endswith("annual-report-pages-231-240.pdf") for n in names)

        assert ingest_paths(kb, [corpus]).counts == {"unchanged": 1}
        assert len(_uploads(standin)) == 26, "a re-ingest uploads nothing"

        answer = _ask(kb)
        assert "Mirabel Quint" in answer.text
        sent = [(d.page_start, d.page_end) for d in answer.documents]
        assert (231, 240) in sent
        assert 0 < answer.pages_sent <= settings.max_request_pages
        assert answer.estimated_input_tokens >= answer.pages_sent * 2000
        assert answer.estimated_cost_usd is not None and answer.estimated_cost_usd > 0
        cited = [c for c in answer.citations if "Mirabel" in c.cited_text]
        assert cited and (cited[0].page_start, cited[0].page_end) == (FACT_PAGE, FACT_PAGE)
        (request,) = standin.requests("POST", "/v1/messages")
        blocks = request.json["messages"][0]["content"]
        assert all(b["source"]["type"] == "file" for b in blocks if "source" in b)
        assert len(_uploads(standin)) == 26, "asking uploads nothing"
    finally:
        kb.close()


def test_older_100_page_parts_move_to_windows_on_the_next_question(
    online_settings: Any, embedder: Any, standin: Any, corpus: Path
) -> None:
    old = online_settings.replace(**OLD_PARTS)
    kb = open_kb(old, embedder=embedder)
    try:
        assert ingest_paths(kb, [corpus]).failed == 0
        (before,) = kb.index.documents()
        chunks = [c.id for c in kb.index.chunks(before.id)]
    finally:
        kb.close()
    assert [(p.page_start, p.page_end) for p in before.parts] == [(1, 100), (101, 200), (201, 260)]

    kb = open_kb(online_settings.replace(**WINDOWS), embedder=embedder)
    try:
        answer = _ask(kb)
        assert "Mirabel Quint" in answer.text
        assert (231, 240) in [(d.page_start, d.page_end) for d in answer.documents]
        (after,) = kb.index.documents()
        assert len(after.parts) == 26 and after.sources == before.sources
        assert [c.id for c in kb.index.chunks(after.id)] == chunks, "nothing re-embedded"
        stored = {f.file_id for f in kb.files.list()}
        assert stored == {f.file_id for f in after.files}, "the old parts' files are gone"
        assert not {f.file_id for f in before.files} & stored
        assert kb.sync() == [], "nothing left to move"
    finally:
        kb.close()


def test_sync_moves_older_parts_to_windows_offline(
    settings: Any, embedder: Any, corpus: Path
) -> None:
    kb = open_kb(settings.replace(**OLD_PARTS), embedder=embedder)
    try:
        ingest_paths(kb, [corpus])
    finally:
        kb.close()
    kb = open_kb(settings.replace(**WINDOWS), embedder=embedder)
    try:
        (moved,) = kb.sync()
        assert len(moved.parts) == 26 and moved.file_store == "local"
        assert {f.file_id for f in kb.files.list()} == {f.file_id for f in moved.files}
        assert kb.sync() == []
    finally:
        kb.close()

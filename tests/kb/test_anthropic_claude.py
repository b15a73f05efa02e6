"""ClaudeAnswerer end to end: ingest for real, then ask through the SDK against the stand-in."""

from __future__ import annotations

import json
import random
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ingest import ingest_paths
from kb.errors import RateLimited, UpstreamAuthError, UpstreamError, UpstreamNotFound
from kb.service import open_kb
from kb.types import AnswerDone, CitationDelta, TextDelta
from standin.pdfs import make_pdf

FILLER = "General remarks about the quarterly operations of the company and its staff."


def _pages(n: int, facts: dict[int, str]) -> list[str]:
    return [facts.get(i, f"Page {i}. {FILLER}") for i in range(1, n + 1)]


@pytest.fixture
def online_kb(online_settings: Any, embedder: Any) -> Iterator[Any]:
    kb = open_kb(
        online_settings.replace(max_request_pages=5, pdf_window_pages=5), embedder=embedder
    )
    yield kb
    kb.close()


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "corpus"
    facts = {11: "The lighthouse keeper Mirabel Quint painted the tower green in 1887."}
    make_pdf(root / "history.pdf", _pages(12, facts), title="Harbour history")
    root.joinpath("notes.txt").write_text(
        "Shopping list for the week.\nThe submarine cable to Orkney was laid by the ship "
        "Faraday in 1901.\nNothing else of note.\n"
    )
    return root


def _word(rng: random.Random) -> str:
    return "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(3, 9)))


def _messages(standin: Any) -> list[Any]:
    return standin.requests("POST", "/v1/messages")


def _ask(kb: Any, question: str) -> Any:
    return kb.answerer.answer(question, kb.retriever.search(question))


def test_split_pdf_citation_maps_to_original_page(online_kb: Any, corpus: Path, standin: Any):
    report = ingest_paths(online_kb, [corpus])
    assert report.failed == 0
    doc = next(d for d in online_kb.index.documents() if d.kind == "pdf")
    assert [(p.page_start, p.page_end) for p in doc.parts] == [(1, 5), (6, 10), (11, 12)]
    assert doc.file_store == "anthropic" and len(doc.files) == 3

    answer = _ask(online_kb, "Who painted the lighthouse tower green?")

    assert answer.answered_by == "claude"
    assert "Mirabel Quint" in answer.text
    pdf_cites = [c for c in answer.citations if c.doc_id == doc.id]
    assert pdf_cites and pdf_cites[0].page_start == 11 and pdf_cites[0].page_end == 11
    assert pdf_cites[0].source == doc.source
    body = _messages(standin)[-1].json
    blocks = body["messages"][0]["content"]
    sent_pdf = [b for b in blocks if b["type"] == "document" and "pages" in b.get("context", "")]
    total_pages = sum(d.page_end - d.page_start + 1 for d in answer.documents)
    assert total_pages <= 5
    assert sent_pdf and all(b["citations"] == {"enabled": True} for b in blocks[:-1])
    assert blocks[-1] == {"type": "text", "text": "Who painted the lighthouse tower green?"}
    assert "cache_control" in blocks[-2]
    ids = [b["source"]["file_id"] for b in blocks[:-1]]
    assert set(ids) <= {f.file_id for d in online_kb.index.documents() for f in d.files}


def test_text_citation_is_char_range(online_kb: Any, corpus: Path, standin: Any) -> None:
    ingest_paths(online_kb, [corpus])
    answer = _ask(online_kb, "Which ship laid the submarine cable to Orkney?")
    text = corpus.joinpath("notes.txt").read_text()
    cites = [c for c in answer.citations if c.char_start is not None]
    assert cites
    c = cites[0]
    assert text[c.char_start : c.char_end] == c.cited_text
    assert "Faraday" in c.cited_text
    assert answer.usage.input_tokens > 0 and answer.usage.cost_usd is not None


def test_request_carries_only_file_ids(online_kb: Any, tmp_path: Path, standin: Any) -> None:
    small, big = tmp_path / "s", tmp_path / "b"
    fact = "The observatory clock was wound by Tobias Wren."
    make_pdf(small / "clock.pdf", [fact])
    rng = random.Random(7)
    noise = [" ".join(_word(rng) for _ in range(250)) for _ in range(5)]
    make_pdf(big / "clock.pdf", [fact + " " + n for n in noise])
    sizes = []
    for root in (small, big):
        ingest_paths(online_kb, [root])
        answer = _ask(online_kb, "Who wound the observatory clock?")
        assert len(answer.documents) == 1
        request = _messages(standin)[-1]
        sizes.append(request.body_size)
        raw = json.dumps(request.json)
        assert "base64" not in raw and "JVBER" not in raw  # no inline PDF
        online_kb.index.remove(answer.documents[0].doc_id)
    blob_sizes = [p.stat().st_size for p in (small / "clock.pdf", big / "clock.pdf")]
    assert blob_sizes[1] > 4 * blob_sizes[0]
    assert abs(sizes[1] - sizes[0]) < 20  # only the page span in `context` differs


def test_missing_remote_file_is_uploaded_again_once(
    online_kb: Any, corpus: Path, standin: Any
) -> None:
    ingest_paths(online_kb, [corpus])
    standin.state.files.clear()  # deleted or expired remotely
    uploads_before = len(standin.requests("POST", "/v1/files"))

    answer = _ask(online_kb, "Which ship laid the submarine cable to Orkney?")

    assert "Faraday" in answer.text
    reuploaded = len(standin.requests("POST", "/v1/files")) - uploads_before
    sent_docs = {d.doc_id for d in answer.documents}
    assert len(_messages(standin)) == 1 + len(sent_docs)  # a retry per document gone
    expected = sum(len(online_kb.index.get(d).files) for d in sent_docs)
    assert reuploaded == expected
    for doc_id in sent_docs:  # the record now holds the new file ids
        assert all(f.file_id in standin.state.files for f in online_kb.index.get(doc_id).files)


def test_file_still_missing_after_reupload_is_an_upstream_error(
    online_kb: Any, corpus: Path, standin: Any
) -> None:
    ingest_paths(online_kb, [corpus])
    standin.state.files.clear()
    standin.inject("/v1/messages", status=404, times=2, error_type="not_found_error")
    with pytest.raises(UpstreamNotFound, match="even after re-uploading") as info:
        _ask(online_kb, "Which ship laid the submarine cable?")
    assert info.value.status == 502  # Anthropic's 404, not the caller's
    assert len(_messages(standin)) == 2


def test_404_about_something_else_is_not_retried(
    online_kb: Any, corpus: Path, standin: Any
) -> None:
    """e.g. an unknown model: every sent file still exists, so nothing is re-uploaded."""
    ingest_paths(online_kb, [corpus])
    uploads = len(standin.requests("POST", "/v1/files"))
    standin.inject("/v1/messages", status=404, error_type="not_found_error")
    with pytest.raises(UpstreamNotFound, match="Asking Claude failed: injected fault"):
        _ask(online_kb, "Which ship laid the submarine cable?")
    assert len(_messages(standin)) == 1
    assert len(standin.requests("POST", "/v1/files")) == uploads


def test_stream_gives_the_same_answer(online_kb: Any, corpus: Path, standin: Any) -> None:
    ingest_paths(online_kb, [corpus])
    question = "Who painted the lighthouse tower green?"
    hits = online_kb.retriever.search(question)
    plain = online_kb.answerer.answer(question, hits)
    events = list(online_kb.answerer.stream(question, hits))

    done = events[-1]
    assert isinstance(done, AnswerDone)
    streamed = done.answer
    assert streamed.text == plain.text
    assert streamed.citations == plain.citations
    assert streamed.documents == plain.documents
    assert "".join(e.text for e in events if isinstance(e, TextDelta)).strip() == plain.text
    assert tuple(e.citation for e in events if isinstance(e, CitationDelta)) == plain.citations
    assert _messages(standin)[-1].json["stream"] is True
    # same documents in the same order: the second request reads the cached prefix
    assert plain.usage.cache_write_tokens > 0
    assert streamed.usage.cache_read_tokens == plain.usage.cache_write_tokens


def test_upstream_errors_become_kb_errors(online_kb: Any, corpus: Path, standin: Any) -> None:
    ingest_paths(online_kb, [corpus])
    question = "Which ship laid the submarine cable?"
    hits = online_kb.retriever.search(question)

    standin.inject("/v1/messages", status=429, times=3, headers={"retry-after-ms": "1"})
    with pytest.raises(RateLimited) as info:
        online_kb.answerer.answer(question, hits)
    assert "rate limited" in str(info.value) and info.value.hint

    standin.inject("/v1/messages", status=529, times=3, headers={"retry-after-ms": "1"})
    with pytest.raises(RateLimited, match="overloaded"):
        online_kb.answerer.answer(question, hits)
    assert issubclass(RateLimited, UpstreamError) and RateLimited.status == 429

    standin.app.api_keys = {"sk-other"}
    with pytest.raises(UpstreamAuthError, match="Anthropic rejected kb's API key") as auth:
        list(online_kb.answerer.stream(question, hits))
    assert auth.value.status == 502 and auth.value.hint == "check ANTHROPIC_API_KEY"


def test_upload_anthropic_refuses_fails_that_file_only(
    online_kb: Any, corpus: Path, standin: Any
) -> None:
    """Anthropic's 413 or storage quota on an upload is that file's status, not the run's end."""
    standin.state.max_file_bytes = 1000  # the PDF's windows are larger; notes.txt is not
    report = ingest_paths(online_kb, [corpus])
    by_name = {Path(r.path).name: r for r in report.results}
    assert by_name["notes.txt"].status == "added"
    rejected = by_name["history.pdf"]
    assert rejected.status == "failed"
    assert rejected.reason.startswith("upload rejected: Uploading ")
    assert "Request exceeds the maximum" in rejected.reason

    corpus.joinpath("more.txt").write_text("The harbour wall was rebuilt in 1923.\n")
    standin.state.storage_quota = 0
    report = ingest_paths(online_kb, [corpus / "more.txt"])
    (result,) = report.results
    assert result.status == "failed" and "Storage quota exceeded" in result.reason

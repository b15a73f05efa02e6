"""ClaudeAnswerer against what *other* servers may send within the contract: the stand-in's
`Quirks` switch each variation on, and kb is asked through the real SDK over HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ingest import ingest_paths
from kb.anthropic.answerer import REFUSED
from kb.cli import main
from kb.errors import RateLimited, UpstreamError, UpstreamRejected
from kb.service import open_kb
from kb.types import Answer, AnswerDone, TextDelta
from standin.pdfs import make_pdf

QUESTION = "Who painted the lighthouse tower green?"
FACT = "The lighthouse keeper Mirabel Quint painted the tower green in 1887."


@pytest.fixture
def online_kb(online_settings: Any, embedder: Any, tmp_path: Path) -> Iterator[Any]:
    root = tmp_path / "corpus"
    pages = [f"Page {n}. Remarks on harbour operations." for n in range(1, 8)]
    pages[5] = FACT
    make_pdf(root / "history.pdf", pages, title="Harbour history")
    root.joinpath("notes.txt").write_text("The submarine cable was laid by the Faraday in 1901.\n")
    kb = open_kb(
        online_settings.replace(max_request_pages=4, pdf_window_pages=4), embedder=embedder
    )
    assert ingest_paths(kb, [root]).failed == 0
    yield kb
    kb.close()


def _ask(kb: Any, stream: bool, question: str = QUESTION) -> Answer:
    hits = kb.retriever.search(question)
    if not stream:
        return kb.answerer.answer(question, hits)  # type: ignore[no-any-return]
    events = list(kb.answerer.stream(question, hits))
    assert isinstance(events[-1], AnswerDone)
    streamed = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert streamed.strip() == events[-1].answer.text or events[-1].answer.notice
    return events[-1].answer


def _messages(standin: Any) -> list[Any]:
    return standin.requests("POST", "/v1/messages")


VARIANTS = {
    "plain": {},
    "citations_null": {"null_citations": True},
    "no_file_id_no_title": {"citation_file_id": False, "citation_title": False},
    "no_cache_usage": {"cache_usage": False},
    "novel_types": {"novel_events": True},
    "whole_seconds": {"fractional_seconds": False},
}


@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_contract_variants_give_the_same_cited_answer(
    online_kb: Any, standin: Any, variant: str, stream: bool
) -> None:
    for name, value in VARIANTS[variant].items():
        setattr(standin.state.quirks, name, value)
    answer = _ask(online_kb, stream)
    assert "Mirabel Quint" in answer.text and not answer.notice
    pdf = next(d for d in online_kb.index.documents() if d.kind == "pdf")
    cites = [c for c in answer.citations if c.doc_id == pdf.id]
    assert cites[0].cited_text == FACT
    assert (cites[0].page_start, cites[0].page_end) == (6, 6)  # part 2 (pages 5-7), page 2
    assert cites[0].file_id == pdf.files[1].file_id
    if variant == "novel_types":  # content_block_location / unknown: the part's pages
        assert {(c.page_start, c.page_end) for c in cites} == {(6, 6), (5, 7)}
    assert answer.usage.input_tokens > 0 and answer.usage.cost_usd is not None
    if variant == "no_cache_usage":
        assert answer.usage.cache_read_tokens == answer.usage.cache_write_tokens == 0


@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
@pytest.mark.parametrize("status", [404, 400])
def test_missing_file_as_404_or_400_is_uploaded_again_once(
    online_kb: Any, standin: Any, status: int, stream: bool
) -> None:
    standin.state.quirks.missing_file_status = status
    standin.state.files.clear()  # deleted or expired remotely
    uploads = len(standin.requests("POST", "/v1/files"))
    answer = _ask(online_kb, stream)
    assert "Mirabel Quint" in answer.text
    docs = {d.doc_id for d in answer.documents}
    # each error names one missing file: its document is uploaded again and the question
    # retried, one document at a time, with no other file looked up
    assert [r.status for r in _messages(standin)] == [status] * len(docs) + [200]
    parts = sum(len(online_kb.index.get(d).files) for d in docs)
    assert len(standin.requests("POST", "/v1/files")) - uploads == parts  # each part once
    assert {d.file_id for d in answer.documents} <= set(standin.state.files)


def test_other_400_is_not_a_missing_file(online_kb: Any, standin: Any) -> None:
    standin.inject("/v1/messages", status=400)
    with pytest.raises(UpstreamRejected, match=r"injected fault \(request req_"):
        _ask(online_kb, False)
    assert len(_messages(standin)) == 1


def test_error_event_after_200_is_a_kb_error(online_kb: Any, standin: Any) -> None:
    standin.state.quirks.stream_error_after = 6
    events: list[Any] = []
    with pytest.raises(RateLimited, match="failed mid-stream: Anthropic is overloaded"):
        events.extend(online_kb.answerer.stream(QUESTION, online_kb.retriever.search(QUESTION)))
    assert not any(isinstance(e, AnswerDone) for e in events)
    standin.state.quirks.stream_error_after = None
    assert "Mirabel Quint" in _ask(online_kb, False).text  # not a stream: unaffected


def test_stream_that_ends_early_is_a_kb_error(online_kb: Any, standin: Any) -> None:
    standin.state.quirks.stream_cut_after = 7
    with pytest.raises(UpstreamError, match="ended before it was complete"):
        _ask(online_kb, True)


@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
def test_stop_reasons_are_surfaced(
    online_kb: Any, online_settings: Any, standin: Any, stream: bool
) -> None:
    online_kb.answerer._settings = online_settings.replace(max_output_tokens=5)
    cut = _ask(online_kb, stream)
    assert "KB_MAX_OUTPUT_TOKENS=5" in cut.notice and len(cut.text) <= 20
    online_kb.answerer._settings = online_settings
    standin.state.quirks.stop_reason = "refusal"
    refused = _ask(online_kb, stream)
    assert refused.text == REFUSED and refused.notice == REFUSED and not refused.citations
    standin.state.quirks.stop_reason = "model_context_window_exceeded"
    assert "context window" in _ask(online_kb, stream).notice


def test_non_json_error_and_missing_request_id(online_kb: Any, standin: Any) -> None:
    standin.inject("/v1/messages", kind="html", status=502, times=3)
    with pytest.raises(UpstreamError) as info:
        _ask(online_kb, False)
    message = str(info.value)
    assert "HTTP 502 with a non-JSON body: 502 Bad Gateway nginx" in message
    assert "<" not in message and "request" not in message.replace("Asking", "")
    assert len(_messages(standin)) == 3  # the SDK's retries, then the error
    standin.state.quirks.error_request_id = False
    standin.inject("/v1/messages", status=400)
    with pytest.raises(UpstreamRejected) as bare:
        _ask(online_kb, False)
    assert str(bare.value) == "Asking Claude failed: injected fault"


def test_rate_limit_hints(online_kb: Any, standin: Any) -> None:
    standin.inject("/v1/messages", status=429, times=2, headers={"retry-after-ms": "1"})
    date = "Wed, 21 Oct 2099 07:28:00 GMT"  # the last answer is not slept on: no retries left
    standin.inject(
        "/v1/messages", status=429, headers={"retry-after-ms": "soon", "retry-after": date}
    )
    with pytest.raises(RateLimited) as info:
        _ask(online_kb, False)
    assert info.value.hint == "retry after 2099-10-21T07:28:00+00:00"
    standin.inject("/v1/messages", status=529, times=3)  # e.g. a spend cap: no retry-after
    with pytest.raises(RateLimited, match="overloaded") as spent:
        _ask(online_kb, False)
    assert spent.value.hint and "try again later" in spent.value.hint
    assert len(_messages(standin)) == 6


def test_retry_after_is_capped(online_kb: Any, standin: Any) -> None:
    import time

    online_kb.anthropic.max_retry_wait = 0.3
    standin.inject("/v1/messages", status=529, headers={"retry-after": "3600"})
    started = time.monotonic()
    assert "Mirabel Quint" in _ask(online_kb, False).text
    assert time.monotonic() - started < 10
    assert [r.status for r in _messages(standin)] == [529, 200]


def test_cli_shows_the_notice_and_a_clean_stream_error(
    online_kb: Any,
    standin: Any,
    online_cli: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    standin.state.quirks.stop_reason = "refusal"
    assert main(["ask", QUESTION]) == 0
    out = capsys.readouterr()
    assert REFUSED in out.out and f"Note: {REFUSED}" in out.err
    standin.state.quirks.stop_reason = None
    standin.state.quirks.stream_error_after = 6
    assert main(["ask", QUESTION, "--stream"]) == 1
    out = capsys.readouterr()
    assert out.out.endswith("\n")  # the partial line is ended before the error
    assert "kb: Asking Claude failed mid-stream: Anthropic is overloaded" in out.err


def test_env_key_and_base_url_are_honoured(
    tmp_path: Path, standin: Any, embedder: Any, online_kb: Any
) -> None:
    from kb.settings import Settings

    env = {"ANTHROPIC_API_KEY": " sk-from-env\n", "ANTHROPIC_BASE_URL": standin.base_url}
    settings = Settings.from_env(env, env_file=None).replace(data_dir=tmp_path / "other")
    assert settings.online
    kb = open_kb(settings, embedder=embedder)
    try:
        assert kb.files.name == "anthropic"
        list(kb.files.list())
    finally:
        kb.close()
    request = standin.log[-1]
    assert request.path == "/v1/files" and request.header("authorization") == "Bearer sk-from-env"


def test_cli_names_the_setting_anthropic_refuses(
    online_kb: Any,
    standin: Any,
    online_cli: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    standin.state.models = {"claude-other"}
    assert main(["ask", QUESTION]) == 1
    err = capsys.readouterr().err
    assert err.startswith("kb: Asking Claude failed: model: ") and "check KB_CLAUDE_MODEL" in err
    standin.state.models = None
    standin.app.api_keys = {"sk-other"}
    assert main(["ask", QUESTION]) == 2  # a bad setting
    err = capsys.readouterr().err
    assert "Anthropic rejected kb's API key" in err and "check ANTHROPIC_API_KEY" in err


def test_a_missing_file_named_by_the_error_is_the_only_one_checked(
    online_kb: Any, standin: Any
) -> None:
    question = "Who painted the lighthouse tower green, and which ship laid the cable?"
    first = _ask(online_kb, False, question)
    sent = [d.file_id for d in first.documents]
    assert len(sent) >= 2  # a PDF window and the notes
    gone = sent[0]
    gone_doc = next(d.doc_id for d in first.documents if d.file_id == gone)
    others = {d.file_id for d in first.documents if d.doc_id != gone_doc}
    assert others
    del standin.state.files[gone]
    log_before = len(standin.log)
    answer = _ask(online_kb, False, question)
    after = standin.log[log_before:]
    assert [r.status for r in after if r.path == "/v1/messages"] == [404, 200]
    looked_up = {r.path.removeprefix("/v1/files/") for r in after if r.method == "GET"}
    assert not looked_up & others  # the 404 named the file: no other file was looked up
    assert gone not in {d.file_id for d in answer.documents}
    assert "Mirabel Quint" in answer.text


def test_requests_keep_the_sdk_user_agent_and_send_no_local_paths(
    online_kb: Any, online_settings: Any, standin: Any, tmp_path: Path
) -> None:
    import anthropic

    _ask(online_kb, False)
    _ask(online_kb, True)
    for request in standin.log:
        assert request.header("user-agent") == f"Anthropic/Python {anthropic.__version__}"
    for request in _messages(standin):
        raw = json.dumps(request.json)
        assert str(tmp_path) not in raw and "Source:" not in raw
        documents = [b for b in request.json["messages"][0]["content"] if b["type"] == "document"]
        assert documents and all(b["title"] for b in documents)
        pdfs = [b for b in documents if "context" in b]
        assert pdfs and all(b["context"].startswith("pages ") for b in pdfs)


def test_source_paths_are_sent_only_when_asked(
    online_settings: Any, embedder: Any, standin: Any, tmp_path: Path
) -> None:
    root = tmp_path / "opted-in"
    root.mkdir()
    root.joinpath("notes.txt").write_text("The submarine cable was laid by the Faraday in 1901.\n")
    settings = online_settings.replace(send_source_paths=True)
    with open_kb(settings, embedder=embedder) as kb:
        assert ingest_paths(kb, [root]).failed == 0
        _ask(kb, False, "Which ship laid the submarine cable?")
    [request] = _messages(standin)
    [block] = [b for b in request.json["messages"][0]["content"] if b["type"] == "document"]
    assert block["context"] == f"Source: {root / 'notes.txt'}"

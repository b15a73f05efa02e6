"""Bulk questions through Message Batches, against the stand-in with the real SDK over HTTP,
and offline with the extractive answerer: `kb ask --batch` and the `BulkQuestions` service."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ingest import ingest_paths
from kb.batch_jobs import Question, parse_questions
from kb.cli import main
from kb.errors import InvalidInput
from kb.pricing import estimate_cost
from kb.service import KnowledgeBase, check_question, open_kb
from kb.types import Usage
from standin.pdfs import make_pdf

BATCHES = "/v1/messages/batches"
LIGHTHOUSE = [
    "Lighthouse log.",
    "Keepers change every week.",
    "The lens is cleaned daily.",
    "Fog signals sound every minute.",
    "The beacon is lit at dusk by the keeper.",
    "Records end here.",
]


@pytest.fixture
def batch_settings(online_settings: Any) -> Any:
    return online_settings.replace(batch_poll_seconds=0.01, pdf_window_pages=2, max_request_pages=4)


def _ingest(settings: Any, embedder: Any, root: Path) -> None:
    make_pdf(root / "lighthouse.pdf", LIGHTHOUSE)
    make_pdf(root / "garden.pdf", ["Water the tomatoes at dawn, never at noon."])
    with open_kb(settings, embedder=embedder) as kb:
        ingest_paths(kb, [root])


@pytest.fixture
def online_kb(batch_settings: Any, embedder: Any, tmp_path: Path) -> Iterator[KnowledgeBase]:
    _ingest(batch_settings, embedder, tmp_path / "docs")
    with open_kb(batch_settings, embedder=embedder) as kb:
        yield kb


def _questions(settings: Any, *texts: str) -> list[Question]:
    return parse_questions(texts, lambda t, f: check_question(t, settings, f))


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_kb_ask_batch_answers_every_question_once_at_half_price(
    batch_settings: Any,
    embedder: Any,
    standin: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _ingest(batch_settings, embedder, tmp_path / "docs")
    monkeypatch.setattr(
        "kb.cli.open_kb_from_env", lambda kb_name=None: open_kb(batch_settings, embedder=embedder)
    )
    questions = tmp_path / "questions.jsonl"
    questions.write_text(
        '{"id": "beacon", "question": "When is the beacon lit by the keeper?"}\n'
        "\n"
        "When should tomatoes be watered?\n"
        '{"id": 7, "question": "When is the beacon lit?", "filters": {"kind": "image"}}\n'
    )
    out = tmp_path / "answers.jsonl"
    assert main(["ask", "--batch", str(questions), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "3/3 answered" in err and "3 question(s), 3 answered, 0 error(s)" in err
    lines = {line["line"]: line for line in _lines(out)}
    assert sorted(lines) == [1, 2, 3]
    beacon, tomatoes, nothing = lines[1], lines[2], lines[3]
    assert beacon["id"] == "beacon" and beacon["answered_by"] == "claude"
    assert beacon["error"] is None and "dusk" in beacon["answer"]
    # page 5 of the original, sent as the second page of the window of pages 5-6
    cited = [c for c in beacon["citations"] if c["title"] == "lighthouse"]
    assert cited and cited[0]["page_start"] == 5 == cited[0]["page_end"]
    assert any(d["page_start"] == 5 and d["page_end"] == 6 for d in beacon["documents"])
    assert "noon" in tomatoes["answer"] and tomatoes["id"] is None
    assert nothing["id"] == 7 and nothing["documents"] == []  # the filter left nothing to send
    usage = beacon["usage"]
    full = estimate_cost(
        beacon["model"],
        Usage(
            usage["input_tokens"],
            usage["output_tokens"],
            usage["cache_write_tokens"],
            usage["cache_read_tokens"],
        ),
    )
    assert full and usage["cost_usd"] == pytest.approx(full / 2)
    # one batch with the two requests, built as `kb ask` builds them; no single asks
    created = standin.requests("POST", BATCHES)
    assert len(created) == 1 and not standin.requests("POST", "/v1/messages")
    sent = created[0].json["requests"]
    assert len(sent) == 2
    blocks = sent[0]["params"]["messages"][0]["content"]
    assert blocks[0]["source"]["type"] == "file" and blocks[0]["citations"] == {"enabled": True}
    assert "cache_control" in [b for b in blocks if b["type"] == "document"][-1]

    # the same command again: nothing sent, the same answers
    out.unlink()
    assert main(["ask", "--batch", str(questions), "--out", str(out)]) == 0
    assert len(standin.requests("POST", BATCHES)) == 1
    assert {line["line"]: line for line in _lines(out)} == lines
    capsys.readouterr()
    assert main(["batches", "list"]) == 0
    listing = capsys.readouterr().out
    assert "ended" in listing and " 3 " in listing
    job = listing.splitlines()[1].split()[0]
    assert main(["batches", "show", job]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["status"] == "ended" and shown["answered"] == 3 and shown["errors"] == 0
    assert shown["batches"][0]["counts"] == {
        "processing": 0,
        "succeeded": 2,
        "errored": 0,
        "canceled": 0,
        "expired": 0,
    }
    assert Path(shown["answers"]).is_file()
    assert main(["batches", "cancel", job]) == 0  # nothing left running: nothing to cancel
    assert json.loads(capsys.readouterr().out)["status"] == "ended"
    assert main(["batches", "show", "job_0000"]) == 1
    assert "no batch job job_0000" in capsys.readouterr().err


def test_mixed_results_canceled_and_errored_each_have_their_line(
    online_kb: KnowledgeBase, standin: Any, tmp_path: Path
) -> None:
    standin.state.batch_pace = 2
    standin.state.max_pdf_pages = 1  # the lighthouse's two-page windows are refused
    bulk = online_kb.bulk()
    garden = json.dumps({"source_prefix": str(tmp_path / "docs" / "garden.pdf")})
    questions = _questions(
        online_kb.settings,
        f'{{"question": "When should tomatoes be watered?", "filters": {garden}}}',
        "When is the beacon lit by the keeper?",
        f'{{"question": "Is noon a good time to water tomatoes?", "filters": {garden}}}',
        f'{{"question": "What is never done at noon?", "filters": {garden}}}',
    )
    job = bulk.start(questions)  # sent, and looked at once: two requests processed
    assert [b.status for b in job.batches] == ["in_progress"]
    assert job.batches[0].counts["processing"] == 2
    assert bulk.store.answered(job.id) == set()
    job = bulk.cancel(job.id)
    assert job.batches[0].status == "ended" and job.batches[0].fetched
    lines = {a["line"]: a for a in bulk.store.answers(job.id)}
    assert sorted(lines) == [1, 2, 3, 4]
    kinds = {n: (a["error"] or {"type": "succeeded"})["type"] for n, a in lines.items()}
    assert sorted(kinds.values()).count("canceled") == 2
    assert kinds[2] in ("invalid_request_error", "canceled")  # too many pages, or never run
    assert all(kinds[n] in ("succeeded", "canceled") for n in (1, 3, 4))
    if kinds[2] != "canceled":
        assert "PDF pages" in lines[2]["error"]["message"]
    # an ended job takes no more steps: nothing is sent again
    bulk.step(job.id)
    assert len(standin.requests("POST", BATCHES)) == 1


def test_an_expired_batch_ends_each_question_with_its_error(
    online_kb: KnowledgeBase, standin: Any
) -> None:
    standin.state.batch_hold = True
    bulk = online_kb.bulk()
    job = bulk.start(_questions(online_kb.settings, "When should tomatoes be watered?"))
    assert bulk.step(job.id).batches[0].status == "in_progress"
    standin.state.batch_ttl = 0
    bulk.step(job.id)
    (line,) = bulk.store.answers(job.id)
    assert line["error"]["type"] == "expired"


def test_a_missing_file_is_uploaded_again_before_sending(
    online_kb: KnowledgeBase, standin: Any
) -> None:
    for stored in list(standin.state.files.values()):
        if stored.filename.endswith("garden.pdf"):
            del standin.state.files[stored.id]
    uploads = len(standin.requests("POST", "/v1/files"))
    bulk = online_kb.bulk()
    job = bulk.run(_questions(online_kb.settings, "When should tomatoes be watered?"))
    assert len(standin.requests("POST", "/v1/files")) == uploads + 1
    (line,) = bulk.store.answers(job.id)
    assert line["error"] is None and "noon" in line["answer"]
    assert len(standin.requests("POST", BATCHES)) == 1


def test_a_file_gone_while_the_batch_ran_is_asked_again_once(
    online_kb: KnowledgeBase, standin: Any
) -> None:
    standin.state.batch_hold = True
    bulk = online_kb.bulk()
    job = bulk.start(_questions(online_kb.settings, "When is the beacon lit by the keeper?"))
    (pick,) = [p for p in job.requests["q1-a1"].picks if p["part"][1] == 5]  # pages 5-6
    del standin.state.files[pick["file_id"]]  # expired or deleted while the batch waited
    standin.state.batch_hold = False
    job = bulk.step(job.id)  # the result names the missing file: a follow-up batch
    assert len(job.batches) == 2
    again = {p["file_id"] for p in job.requests["q1-a2"].picks}
    assert pick["file_id"] not in again and again <= set(standin.state.files)
    bulk.step(job.id)
    (line,) = bulk.store.answers(job.id)
    assert line["error"] is None and "dusk" in line["answer"]
    assert line["batch_id"] == job.batches[1].id
    # the document was uploaded again whole: every window, each file present
    record = online_kb.document(pick["doc"][0])
    assert [(p.page_start, p.page_end) for p in record.parts] == [(1, 2), (3, 4), (5, 6)]
    assert len(record.files) == 3 and {f.file_id for f in record.files} <= set(standin.state.files)
    # the second time the file goes, the error is the answer: no third batch
    standin.state.batch_hold = True
    job2 = bulk.start(_questions(online_kb.settings, "Is noon a good time to water tomatoes?"))
    for _ in range(2):
        fid = job2.requests[max(job2.requests)].picks[0]["file_id"]
        standin.state.files.pop(fid, None)
        standin.state.batch_hold = False
        job2 = bulk.step(job2.id)
        standin.state.batch_hold = True
    (line,) = bulk.store.answers(job2.id)
    assert line["error"]["type"] == "not_found_error" and len(job2.batches) == 2


def test_limits_split_a_large_question_set(
    online_kb: KnowledgeBase, standin: Any, batch_settings: Any
) -> None:
    texts = [f"When should tomatoes be watered, case {n}?" for n in range(5)]
    online_kb.settings = batch_settings.replace(batch_max_requests=2)
    job = online_kb.bulk().run(_questions(online_kb.settings, *texts))
    sizes = [len(r.json["requests"]) for r in standin.requests("POST", BATCHES)]
    assert sizes == [2, 2, 1] and len(job.batches) == 3
    assert len(list(online_kb.bulk().store.answers(job.id))) == 5

    one = len(json.dumps(standin.requests("POST", BATCHES)[0].json["requests"][0]))
    online_kb.settings = batch_settings.replace(batch_max_bytes=max(1024, 2 * one + 100))
    more = [f"When should tomatoes be watered, take {n}?" for n in range(5)]
    online_kb.bulk().run(_questions(online_kb.settings, *more))
    sizes = [len(r.json["requests"]) for r in standin.requests("POST", BATCHES)][3:]
    assert sizes == [2, 2, 1]
    assert all(r.body_size <= 2 * one + 100 for r in standin.requests("POST", BATCHES)[3:])


def test_offline_batch_answers_locally_in_the_same_lines(
    env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ingest", str(env)]) == 0
    questions = tmp_path / "q.txt"
    questions.write_text("When should tomatoes be watered?\nHow often is the bilge pump checked?\n")
    capsys.readouterr()
    assert main(["ask", "--batch", str(questions)]) == 0
    out = capsys.readouterr()
    lines = [json.loads(line) for line in out.out.splitlines()]
    assert [a["line"] for a in lines] == [1, 2]
    assert all(a["answered_by"] == "extractive" and a["error"] is None for a in lines)
    assert "dawn" in lines[0]["answer"] and lines[1]["citations"][0]["page_start"] == 2
    assert "2/2 answered" in out.err and "no model was called" in out.err


def test_question_files_are_checked_line_by_line(settings: Any) -> None:
    def parse(*lines: str) -> list[Question]:
        return parse_questions(lines, lambda t, f: check_question(t, settings, f))

    parsed = parse(
        "plain question?", '{"question": "q2", "id": 3, "filters": {"source_prefix": "/a"}}'
    )
    assert [(q.line, q.id, q.question) for q in parsed] == [
        (1, None, "plain question?"),
        (2, 3, "q2"),
    ]
    assert parsed[1].filters is not None and parsed[1].filters.source_prefix == "/a"
    bad = {
        '{"question": 1}': "line 1: `question` must be a string",
        '{"question": "x", "extra": 1}': "unknown field",
        '{"question": "x", "filters": {"kind": "movie"}}': "filters.kind",
        '{"question": "x", "id": [1]}': "`id` must be",
        "{not json": "not valid JSON",
        '{"question": "   "}': "must not be empty",
    }
    for line, message in bad.items():
        with pytest.raises(InvalidInput, match=message):
            parse(line)
    with pytest.raises(InvalidInput, match="no question"):
        parse("", "  ")


def test_batch_flags_are_checked(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ask"]) == 2
    assert main(["ask", "q", "--batch", "x.jsonl"]) == 2
    assert main(["ask", "q", "--out", "x.jsonl"]) == 2
    assert main(["ask", "--batch", "missing.jsonl"]) == 2
    err = capsys.readouterr().err
    assert "a question is required" in err and "--batch takes no question" in err
    assert "cannot read missing.jsonl" in err

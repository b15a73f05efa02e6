"""One file never stops a run: a failed upload (refused, or the service failing or out of
reach) or a PDF that cannot be cut into parts is that file's status; the others are added."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest

from ingest import ingest_paths
from kb.cli import main
from kb.errors import ExtractionError
from kb.service import open_kb
from standin.pdfs import make_pdf
from tests.ingest.test_pipeline import statuses

NOTES = {
    "buoys.txt": "Red buoys mark the port side of the channel when entering the harbour.\n",
    "locks.txt": "Lock gates open two hours before high water and close at the slack.\n",
    "pilots.txt": "Pilots board inbound ships at the outer fairway buoy in any weather.\n",
}


@pytest.fixture
def notes(tmp_path: Path) -> Path:
    root = tmp_path / "notes"
    root.mkdir()
    for name, text in NOTES.items():
        (root / name).write_text(text)
    return root


def assert_committed_only(kb: Any, names: set[str]) -> None:
    """Records for exactly `names`, and no chunk that belongs to no record."""
    docs = kb.index.documents()
    assert {Path(s).name for d in docs for s in d.sources} == names
    assert kb.index.chunk_count() == sum(d.chunk_count for d in docs)


def test_an_upload_refused_upstream_fails_that_file_alone(
    online_settings: Any, standin: Any, embedder: Any, notes: Path
) -> None:
    standin.inject("/v1/files", status=429, error_type="rate_limit_error")  # one upload, once
    with open_kb(online_settings, embedder=embedder) as kb:
        report = ingest_paths(kb, [notes])
        got = statuses(report)
        failed = {name for name, label in got.items() if label.startswith("failed: ")}
        assert len(failed) == 1, got
        [name] = failed
        assert got[name].startswith("failed: upload failed: ")
        assert {got[n] for n in got if n != name} == {"added"}
        assert report.failed == 1
        assert_committed_only(kb, set(NOTES) - failed)

        again = statuses(ingest_paths(kb, [notes]))  # the next run finishes the job
        assert again[name] == "added"
        assert {again[n] for n in again if n != name} == {"unchanged"}


def test_an_unreachable_service_fails_each_file_and_the_cli_still_reports(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", f"http://127.0.0.1:{port}")

    assert main(["ingest", str(env), "--json"]) == 1
    summary = json.loads(capsys.readouterr().out)
    results = {Path(r["path"]).name: r for r in summary["results"]}
    assert set(results) == {"garden.md", "boat.pdf"}
    for result in results.values():
        assert result["status"] == "failed"
        assert result["reason"].startswith(("upload failed: ", "not uploaded: "))
        assert "could not reach the Anthropic API" in result["reason"]
    assert summary["counts"] == {"failed": 2} and summary["failed"] == 2

    assert main(["ingest", str(env)]) == 1  # the table and the summary line, no traceback
    captured = capsys.readouterr()
    assert "failed: " in captured.out and "2 files in " in captured.out
    assert "2 failed" in captured.out and captured.err == ""


def test_after_a_streak_of_service_failures_the_rest_are_not_sent(
    online_settings: Any, standin: Any, embedder: Any, tmp_path: Path
) -> None:
    root = tmp_path / "many"
    root.mkdir()
    for i in range(12):
        (root / f"note-{i:02d}.txt").write_text(f"Harbour note number {i} about tides.\n")
    standin.inject("/v1/files", status=401, error_type="authentication_error", times=1000)
    with open_kb(online_settings, embedder=embedder) as kb:
        report = ingest_paths(kb, [root])
        assert kb.index.count() == 0 and kb.index.chunk_count() == 0
    labels = statuses(report).values()
    assert len(labels) == 12 and all(label.startswith("failed: ") for label in labels)
    assert any(label.startswith("failed: not uploaded: ") for label in labels)
    assert len(standin.requests("POST", "/v1/files")) < 12  # refused kb's key: not sent again


def test_a_pdf_whose_parts_cannot_be_planned_fails_alone(
    knowledge_base: Any, notes: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ingest.pipeline

    make_pdf(notes / "chart.pdf", ["Chart of the approaches.", "Soundings in metres."])
    plan = ingest.pipeline.plan_parts

    def broken(kind, page_count, data, settings):  # type: ignore[no-untyped-def]
        if kind == "pdf":
            raise ExtractionError("malformed PDF", "malformed PDF: cannot write pages 1-2")
        return plan(kind, page_count, data, settings)

    monkeypatch.setattr(ingest.pipeline, "plan_parts", broken)
    report = ingest_paths(knowledge_base, [notes])
    got = statuses(report)
    assert got["chart.pdf"] == "failed: malformed PDF: cannot write pages 1-2"
    assert {got[n] for n in NOTES} == {"added"}
    assert report.failed == 1
    assert_committed_only(knowledge_base, set(NOTES))


@pytest.mark.parametrize("where", ["part_bytes", "decrypted_copy"])
def test_a_pdf_whose_upload_copy_cannot_be_written_fails_alone(
    knowledge_base: Any, notes: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    import kb.pdf
    import kb.uploads

    make_pdf(notes / "chart.pdf", ["Chart of the approaches.", "Soundings in metres."])

    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise ExtractionError("malformed PDF", "malformed PDF: cannot rewrite: bad xref")

    if where == "part_bytes":
        monkeypatch.setattr(kb.uploads, "part_bytes", broken)
    else:  # an encrypted PDF is uploaded as a decrypted copy
        make_pdf(notes / "chart.pdf", ["Chart of the approaches."], empty_password_encrypt=True)
        monkeypatch.setattr(kb.pdf, "decrypted_copy", broken)
    report = ingest_paths(knowledge_base, [notes])
    got = statuses(report)
    assert got["chart.pdf"] == "failed: malformed PDF: cannot rewrite: bad xref"
    assert {got[n] for n in NOTES} == {"added"}
    assert_committed_only(knowledge_base, set(NOTES))

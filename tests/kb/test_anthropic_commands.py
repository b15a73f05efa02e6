"""`kb files sync|gc|list` and `kb ask` against the stand-in, through the real CLI entry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ingest import ingest_paths
from kb.cli import main
from kb.service import open_kb
from standin.pdfs import make_pdf


def test_sync_after_moving_online_then_gc(
    settings: Any, online_settings: Any, embedder: Any, standin: Any, tmp_path: Path
) -> None:
    make_pdf(tmp_path / "docs" / "a.pdf", ["The beacon is lit at dusk."])
    offline = open_kb(settings, embedder=embedder)
    ingest_paths(offline, [tmp_path / "docs"])
    assert [d.file_store for d in offline.index.documents()] == ["local"]
    offline.close()

    online = open_kb(online_settings.replace(gc_grace_seconds=0), embedder=embedder)
    try:
        done = online.sync()
        assert len(done) == 1 and done[0].file_store == "anthropic"
        record = online.index.get(done[0].id)
        assert record is not None and record.files[0].file_id in standin.state.files
        assert online.sync() == []  # nothing left to upload
        orphan = online.files.upload("cd" * 32, 0, "old.txt", "text/plain", b"stale")
        assert [s.file_id for s in online.collect_garbage(dry_run=True).deleted] == [orphan]
        assert orphan in standin.state.files
        online.collect_garbage()
        assert orphan not in standin.state.files
        assert len(standin.state.files) == 1
    finally:
        online.close()


def test_kb_ask_cli_json(
    online_settings: Any,
    embedder: Any,
    standin: Any,
    tmp_path: Path,
    online_cli: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    make_pdf(tmp_path / "docs" / "a.pdf", ["Intro page.", "The beacon is lit at dusk."])
    kb = open_kb(online_settings, embedder=embedder)
    ingest_paths(kb, [tmp_path / "docs"])
    kb.close()
    assert main(["ask", "When is the beacon lit?", "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["answered_by"] == "claude"
    assert answer["citations"][0]["page_start"] == 2

    assert main(["ask", "When is the beacon lit?", "--stream"]) == 0
    out = capsys.readouterr()
    assert "dusk" in out.out and "p. 2" in out.out and "cache" in out.err

    standin.app.api_keys = {"sk-other"}
    assert main(["ask", "When is the beacon lit?"]) == 2  # a bad setting
    err = capsys.readouterr().err
    assert "kb: Asking Claude failed: Anthropic rejected kb's API key" in err
    assert "check ANTHROPIC_API_KEY" in err

"""`kb ingest`, `kb search` and `kb docs` through the real command entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kb.cli import main


def test_ingest_json_summary_and_exit_codes(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ingest", str(env), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["counts"] == {"added": 2}
    assert {Path(r["path"]).name for r in summary["results"]} == {"garden.md", "boat.pdf"}

    (env / "bad.txt").write_bytes(b"\xff\xfe\xfa not utf-8")
    assert main(["ingest", str(env)]) == 1
    out = capsys.readouterr().out
    assert "failed: " in out and "unchanged" in out

    assert main(["ingest", str(env / "missing")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_usage_error_exits_2(env: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["ingest"])
    assert exc.value.code == 2


def test_search_and_docs(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["ingest", str(env), "--json"])
    capsys.readouterr()

    assert main(["search", "when should I check the bilge pump", "-k", "1", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert hits[0]["source"].endswith("boat.pdf")
    assert hits[0]["chunks"][0]["page_end"] >= 2

    assert main(["docs", "list", "--json"]) == 0
    docs = json.loads(capsys.readouterr().out)
    assert len(docs) == 2
    doc_id = next(d["id"] for d in docs if d["sources"][0].endswith("garden.md"))

    assert main(["docs", "show", doc_id[:10]]) == 0
    assert "garden.md" in capsys.readouterr().out
    assert main(["docs", "rm", doc_id[:10]]) == 0
    capsys.readouterr()
    assert main(["docs", "show", doc_id]) == 1
    assert "no document" in capsys.readouterr().err


def test_summary_counts_files_in_words(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ingest", str(env / "garden.md")]) == 0
    assert "\n1 file in " in capsys.readouterr().out  # not "1 files"
    empty = env.parent / "empty"
    empty.mkdir()
    assert main(["ingest", str(empty)]) == 0
    out = capsys.readouterr().out
    assert out.strip() == "no files found under the given paths"  # and no empty table

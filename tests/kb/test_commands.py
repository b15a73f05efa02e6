"""`kb search`, `kb ask`, `kb docs` and `kb files` as a user meets them: messages, JSON and
exit codes, through the real command entry point."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from kb.cli import main


def ingest(root: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    """Ingest `root`; return {file name: document id}."""
    assert main(["ingest", str(root), "--json"]) == 0
    results = json.loads(capsys.readouterr().out)["results"]
    return {Path(r["path"]).name: r["doc_id"] for r in results}


def test_search_and_docs_on_an_empty_knowledge_base_say_what_to_do(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["search", "tomatoes"]) == 0
    assert "knowledge base is empty" in capsys.readouterr().out
    assert main(["docs", "list"]) == 0
    assert "kb ingest" in capsys.readouterr().out
    ingest(env, capsys)
    assert main(["docs", "list", "--kind", "image"]) == 0
    assert capsys.readouterr().out.strip() == "no documents match"


def test_docs_rm_checks_every_id_before_removing_any(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = ingest(env, capsys)
    assert main(["docs", "rm", ids["garden.md"][:8], "ffffffffff"]) == 1
    assert "no document ffffffffff" in capsys.readouterr().err
    assert main(["docs", "show", ids["garden.md"]]) == 0  # still there
    capsys.readouterr()

    assert main(["docs", "rm", ids["garden.md"][:8], ids["boat.pdf"], "--json"]) == 0
    removed = json.loads(capsys.readouterr().out)
    assert {d["id"] for d in removed} == {ids["garden.md"], ids["boat.pdf"]}
    assert main(["docs", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_docs_list_marks_cut_titles_and_counts_in_words(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (env / "long.md").write_text("# " + "A very long title " * 5 + "\n\nBody text.\n")
    ingest(env, capsys)
    assert main(["docs", "list", "--source-prefix", str(env / "long")]) == 0
    out = capsys.readouterr().out
    assert "…" in out and out.rstrip().endswith("\n1 document")
    assert main(["docs", "show", "abc"]) == 2  # too short to be an id
    assert "at least 6 characters" in capsys.readouterr().err


def test_offline_ask_says_first_that_no_model_was_called(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest(env, capsys)
    both = io.StringIO()  # stdout and stderr in the order a terminal shows them
    monkeypatch.setattr("sys.stdout", both)
    monkeypatch.setattr("sys.stderr", both)
    assert main(["ask", "When should I water the tomatoes?", "-k", "1"]) == 0
    lines = both.getvalue().splitlines()
    assert lines[0].startswith("Note: No model was called")
    assert "not an answer" in lines[0]
    assert "Sources:" in lines and "Water tomatoes at dawn" in both.getvalue()
    assert sum("No model was called" in line for line in lines) == 1


def test_files_gc_and_sync_print_json(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ingest(env, capsys)
    assert main(["files", "gc", "--dry-run", "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found == {
        "deleted": [],
        "too_new": [],
        "old_names": [],
        "leftovers": [],
        "grace_seconds": 3600.0,
        "dry_run": True,
        "copies": [],
    }
    assert main(["files", "sync", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_files_gc_leaves_new_files_alone_and_says_so(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from kb.cli import open_kb_from_env

    ingest(env, capsys)
    with open_kb_from_env() as kb:  # as an ingest's upload before its record is committed
        orphan = kb.files.upload("cd" * 32, 0, "stale.txt", "text/plain", b"not committed yet")
        used = kb.referenced_files()
    assert main(["files", "gc"]) == 0
    out = capsys.readouterr().out
    assert f"skipped {orphan}  kb-default-" in out and "under the 60 min grace period" in out
    assert "deleted 0 unreferenced file(s)" in out
    assert "skipped 1 unreferenced file(s) younger than KB_GC_GRACE_SECONDS (60 min)" in out
    with open_kb_from_env() as kb:
        assert kb.files.exists(orphan)

    monkeypatch.setenv("KB_GC_GRACE_SECONDS", "0")
    assert main(["files", "gc", "--dry-run"]) == 0
    assert f"would delete {orphan}" in capsys.readouterr().out
    assert main(["files", "gc"]) == 0
    assert "deleted 1 unreferenced file(s)" in capsys.readouterr().out
    with open_kb_from_env() as kb:
        assert not kb.files.exists(orphan)
        assert all(kb.files.exists(f) for f in used)


class _ClosedPipe(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_a_closed_pipe_ends_quietly(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest(env, capsys)
    monkeypatch.setattr("sys.stdout", _ClosedPipe())  # `kb docs list --json | head -1`
    assert main(["docs", "list", "--json"]) == 1
    assert capsys.readouterr().err == ""


def test_kb_option_and_kb_name_pick_the_knowledge_base_a_command_works_on(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["ingest", "--kb", "garden", str(env), "--json"]) == 0
    ids = {r["doc_id"] for r in json.loads(capsys.readouterr().out)["results"]}
    assert main(["docs", "list", "--kb", "garden", "--json"]) == 0
    assert {d["id"] for d in json.loads(capsys.readouterr().out)} == ids
    assert (env.parent / "kbdata" / "kbs" / "garden" / "chroma").is_dir()

    assert main(["docs", "list", "--json"]) == 0  # the default knowledge base: empty
    assert json.loads(capsys.readouterr().out) == []
    assert main(["search", "When are tomatoes watered?", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    some_id = sorted(ids)[0]
    assert main(["docs", "rm", some_id]) == 1  # not this knowledge base's
    assert f"no document {some_id}" in capsys.readouterr().err

    monkeypatch.setenv("KB_NAME", "garden")
    assert main(["search", "When are tomatoes watered?", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["title"] == "Garden"
    assert main(["ask", "When are tomatoes watered?", "--json"]) == 0
    assert "dawn" in json.loads(capsys.readouterr().out)["text"]
    assert main(["files", "list", "--kb", "default"]) == 0  # --kb wins over KB_NAME
    assert "0 file(s)" in capsys.readouterr().out

    with pytest.raises(SystemExit) as exited:
        main(["search", "--kb", "../up", "tomatoes"])
    assert exited.value.code == 2
    assert "argument --kb: '../up' must be 1 to 53 letters" in capsys.readouterr().err

"""What a crash leaves behind never breaks a command, and is cleaned once old enough: a stored
file without its `.meta`, local copies no document uses, BM25 temp folders."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from ingest import ingest_paths
from kb.blobs import GC_GRACE_SECONDS, BlobStore
from kb.cli import main
from kb.files import LocalFileStore
from kb.lexical import STALE_TEMP_SECONDS, LexicalIndex
from kb.service import open_kb

OLD = 2 * 3600  # seconds: older than every threshold here
KB_ID = "0123456789abcdef"


def age(path: Path, seconds: float) -> Path:
    when = time.time() - seconds
    os.utime(path, (when, when))
    return path


# -- stored files and their .meta ---------------------------------------------------------------


def test_a_file_without_or_with_a_broken_meta_is_skipped_and_repaired(tmp_path: Path) -> None:
    store = LocalFileStore(tmp_path / "files", "default", KB_ID)
    whole = store.upload("a" * 64, 0, "whole.txt", "text/plain", b"complete")
    lost = store.upload("b" * 64, 0, "lost.txt", "text/plain", b"meta lost")
    broken = store.upload("c" * 64, 0, "broken.txt", "text/plain", b"meta broken")
    (store.root / f"{lost}.meta").unlink()  # left by an earlier version's crash
    (store.root / f"{broken}.meta").write_bytes(b"\xff\xfe\x00 not text")

    # whose they are cannot be read, so they are nobody's to list or collect; nothing breaks
    assert [s.file_id for s in store.list()] == [whole]
    assert store.upload("b" * 64, 0, "lost.txt", "text/plain", b"meta lost") == lost
    assert store.upload("c" * 64, 0, "broken.txt", "text/plain", b"meta broken") == broken
    listed = {s.file_id: s for s in store.list()}
    assert set(listed) == {whole, lost, broken}  # repaired by their next upload
    assert listed[lost].filename.endswith("lost.txt") and listed[lost].size_bytes == 9
    for file_id in (lost, broken):
        store.delete(file_id)
    assert [s.file_id for s in store.list()] == [whole]
    assert sorted(p.name for p in store.root.iterdir()) == [whole, f"{whole}.meta"]  # no temps


def test_files_list_and_gc_go_on_past_a_broken_meta(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ingest", str(env), "--json"]) == 0
    capsys.readouterr()
    root = Path(os.environ["KB_DATA_DIR"]) / "files" / "default"
    used = sorted(p for p in root.iterdir() if not p.suffix)
    kb_id = used[0].name.split("-")[1]  # local-<kb id>-<hash>-p<part>
    store = LocalFileStore(root.parent, "default", kb_id)
    orphan = store.upload("d" * 64, 0, "orphan.txt", "text/plain", b"never committed")
    age(root / orphan, OLD)  # past the grace period
    nameless = store.upload("e" * 64, 0, "nameless.txt", "text/plain", b"meta lost")
    (root / f"{nameless}.meta").unlink()
    age(root / nameless, OLD)
    used[0].with_suffix(".meta").write_bytes(b"\x80\x81")

    assert main(["files", "list", "--json"]) == 0
    listed = {s["file_id"]: s for s in json.loads(capsys.readouterr().out)}
    assert set(listed) == {*(p.name for p in used[1:]), orphan}
    assert listed[orphan]["referenced"] is False
    assert main(["files", "list"]) == 0
    assert f"{len(used)} file(s)" in capsys.readouterr().out

    assert main(["files", "gc", "--json"]) == 0
    assert [s["file_id"] for s in json.loads(capsys.readouterr().out)["deleted"]] == [orphan]
    assert sorted(p for p in root.iterdir() if not p.suffix) == sorted([*used, root / nameless])


def test_gc_removes_what_killed_writes_left_in_the_store(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A process killed while it wrote a stored file or its `.meta` leaves the temp file it
    wrote under, or a `.meta` without its file: nobody's file, never listed, taken by gc once
    past the grace period."""
    assert main(["ingest", str(env), "--json"]) == 0
    capsys.readouterr()
    root = Path(os.environ["KB_DATA_DIR"]) / "files" / "default"
    stored = sorted(p.name for p in root.iterdir())
    killed = root / ".tmp-k1ll3d"
    killed.write_bytes(b"half a PDF")
    lone_meta = root / "local-0123456789abcdef-aaaa-p0.meta"
    lone_meta.write_text("kb-default-0123456789abcdef-aaaa-p0-cut.txt\ntext/plain\n")
    for path in (killed, lone_meta):
        age(path, OLD)
    writing = root / ".tmp-wr1t1n"  # a write in flight
    writing.write_bytes(b"being written")
    uploading = root / "local-0123456789abcdef-bbbb-p0.meta"  # its file comes next
    uploading.write_text("kb-default-0123456789abcdef-bbbb-p0-next.txt\ntext/plain\n")

    assert main(["files", "list", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == len(stored) // 2
    assert main(["files", "gc", "--dry-run", "--json"]) == 0
    dry = json.loads(capsys.readouterr().out)
    assert dry["deleted"] == [] and sorted(dry["leftovers"]) == sorted(
        [killed.name, lone_meta.name]
    )
    assert killed.exists() and lone_meta.exists()

    assert main(["files", "gc"]) == 0
    out = capsys.readouterr().out
    assert f"deleted leftover {killed.name}" in out and "deleted 2 leftover(s)" in out
    assert sorted(p.name for p in root.iterdir()) == sorted([*stored, writing.name, uploading.name])


# -- local copies of originals ------------------------------------------------------------------


def test_gc_removes_unused_copies_once_past_the_grace_period(
    env: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert GC_GRACE_SECONDS == 3600
    assert main(["ingest", str(env), "--json"]) == 0
    used = {r["doc_id"] for r in json.loads(capsys.readouterr().out)["results"]}
    blobs = BlobStore(Path(os.environ["KB_DATA_DIR"]) / "blobs")
    for doc_id in used:  # in use, however old
        age(blobs.path(doc_id), OLD)
    source = tmp_path / "orphan.txt"
    source.write_text("Stored by an ingest that was killed before it committed.\n")
    old_orphan = blobs.put_file(source)
    age(blobs.path(old_orphan), OLD)
    source.write_text("Stored a moment ago by an ingest still running.\n")
    new_orphan = blobs.put_file(source)
    cut_short = blobs.path(old_orphan).parent / ".tmp-x1y2z3"  # a copy a crash cut short
    cut_short.write_bytes(b"half")
    age(cut_short, OLD)
    fresh_temp = blobs.path(new_orphan).parent / ".tmp-a1b2c3"
    fresh_temp.write_bytes(b"being written")

    assert main(["files", "gc", "--dry-run", "--json"]) == 0
    dry = json.loads(capsys.readouterr().out)
    assert dry["deleted"] == [] and sorted(dry["copies"]) == sorted([old_orphan, ".tmp-x1y2z3"])
    assert blobs.has(old_orphan) and cut_short.exists()

    assert main(["files", "gc"]) == 0
    out = capsys.readouterr().out
    assert f"deleted local copy {old_orphan}" in out and "2 unused local copies" in out
    assert not blobs.has(old_orphan) and not cut_short.exists()
    assert blobs.has(new_orphan) and fresh_temp.exists()
    assert all(blobs.has(doc_id) for doc_id in used)


def test_a_copy_an_ingest_finds_again_is_fresh_for_gc(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path / "blobs")
    source = tmp_path / "note.txt"
    source.write_text("Left by a failed run, found again by the next.\n")
    doc_id = blobs.put_file(source)
    age(blobs.path(doc_id), OLD)
    assert blobs.collect(set(), dry_run=True) == [doc_id]
    assert blobs.put_file(source) == doc_id  # the next ingest needs it
    assert blobs.collect(set()) == []
    assert blobs.has(doc_id)


def test_copies_of_another_knowledge_base_in_the_same_chroma_are_kept(
    settings: Any, embedder: Any, tmp_path: Path
) -> None:
    """A knowledge base whose collections are in the default's Chroma (made by a version
    before named knowledge bases had directories of their own) uses the data dir's copies."""
    from kb.index import Index

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "ferry.txt").write_text("The ferry leaves at seven from the north quay.\n")
    with open_kb(settings, embedder=embedder) as kb:
        [result] = ingest_paths(kb, [docs]).results
        doc = kb.document(result.doc_id or "")
        Index(kb.index.client, "other", embedder.name, embedder.dimension).commit(doc)
        kb.index.remove(doc.id)  # the default's record goes; the copy stays for "other"
        age(kb.blobs.path(doc.id), OLD)
        assert kb.index.count() == 0
        assert kb.collect_copies() == []
        assert kb.blobs.has(doc.id)


# -- BM25 temp folders --------------------------------------------------------------------------


def test_bm25_saves_in_temp_folders_of_their_own_and_removes_stale_ones(
    knowledge_base: Any, tmp_path: Path
) -> None:
    kb = knowledge_base
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "tides.txt").write_text("Spring tides in the harbour reach four metres.\n")
    ingest_paths(kb, [docs])
    lexical = LexicalIndex(kb.index, kb.settings)
    root = kb.settings.data_dir / "bm25" / kb.settings.kb_name
    target = lexical._dir(kb.index.generation())
    assert target is not None
    # Another worker's save in progress, under the name this thread would once have used.
    busy = root / f".tmp-{target.name}-{threading.get_ident()}"
    busy.mkdir(parents=True)
    (busy / "params.index.json").write_text("{}")
    stale = root / ".tmp-0123456789abcdef01234567-1234"  # a killed worker's
    stale.mkdir()
    (stale / "vocab.index.json").write_text("{}")
    age(stale, STALE_TEMP_SECONDS + 60)

    assert lexical.search("harbour tides", 1)
    assert sorted(p.name for p in root.iterdir()) == sorted([target.name, busy.name])
    assert (busy / "params.index.json").read_text() == "{}"
    assert LexicalIndex(kb.index, kb.settings)._load(kb.index.generation()) is not None

"""Installs sharing one Anthropic workspace: each knowledge base lists, reuses and collects only
its own files, gc waits out the grace period, and knowledge bases from before identities keep
working."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ingest import ingest_paths
from kb.index import connect
from kb.service import KnowledgeBase, open_kb
from kb.types import RemoteFile
from standin.pdfs import make_pdf

QUESTION = "When is the beacon lit?"


@contextmanager
def _opened(settings: Any, embedder: Any) -> Iterator[KnowledgeBase]:
    kb = open_kb(settings, embedder=embedder)
    try:
        yield kb
    finally:
        kb.close()


def _corpus(root: Path) -> Path:
    make_pdf(root / "beacon.pdf", ["Harbour rules.", "The beacon is lit at dusk."])
    (root / "tides.txt").write_text("High tide at the harbour is at noon on Sundays.\n")
    return root


def _referenced(kb: KnowledgeBase) -> set[str]:
    return {f.file_id for d in kb.index.documents() for f in d.files}


def _uploads(standin: Any) -> int:
    return len(standin.requests("POST", "/v1/files"))


def test_two_installs_sharing_a_workspace_keep_their_files_apart(
    online_settings: Any, embedder: Any, standin: Any, tmp_path: Path
) -> None:
    corpus = _corpus(tmp_path / "corpus")
    # Two installs, each with its own data and Chroma, both called `default` (the default).
    one = online_settings.replace(data_dir=tmp_path / "one", gc_grace_seconds=0)
    two = online_settings.replace(data_dir=tmp_path / "two", gc_grace_seconds=0)
    with _opened(one, embedder) as kb:
        assert ingest_paths(kb, [corpus]).failed == 0
        first, first_id = _referenced(kb), kb.index.kb_id
    with _opened(two, embedder) as kb:
        assert ingest_paths(kb, [corpus]).failed == 0  # the same files, byte for byte
        second, second_id = _referenced(kb), kb.index.kb_id
        assert {f.file_id for f in kb.files.list()} == second
    assert first_id != second_id
    assert len(first) == len(second) == 2 and not first & second  # nothing reused across
    assert _uploads(standin) == 4
    names = {i: f.filename for i, f in standin.state.files.items()}
    assert all(names[i].startswith(f"kb-default-{first_id}-") for i in first)
    assert all(names[i].startswith(f"kb-default-{second_id}-") for i in second)

    for settings in (one, two):  # each collects only its own unreferenced files: none
        with _opened(settings, embedder) as kb:
            found = kb.collect_garbage()
            assert found.deleted == found.too_new == found.old_names == []
    assert set(standin.state.files) == first | second

    with _opened(one, embedder) as kb:
        for doc in kb.index.documents():
            kb.remove(doc.id)
        assert kb.index.documents() == []
    assert set(standin.state.files) == second, "only the first install's own files went"

    with _opened(two, embedder) as kb:
        assert kb.collect_garbage().deleted == []
        assert _referenced(kb) == second and second <= set(standin.state.files)
        answer = kb.ask(QUESTION, kb.search(QUESTION))
        assert answer.answered_by == "claude" and "dusk" in answer.text
        assert {d.file_id for d in answer.documents} <= second
    assert _uploads(standin) == 4, "nothing had to be uploaded again"


def test_gc_with_the_default_grace_leaves_a_fresh_unreferenced_file_alone(
    online_settings: Any, embedder: Any, standin: Any
) -> None:
    with _opened(online_settings, embedder) as kb:  # KB_GC_GRACE_SECONDS unset: an hour
        assert kb.settings.gc_grace_seconds >= 3600
        fresh = kb.files.upload("cd" * 32, 0, "uncommitted.txt", "text/plain", b"in flight")
        old = kb.files.upload("ef" * 32, 0, "abandoned.txt", "text/plain", b"long ago")
        standin.state.files[old].created_at = datetime.now(UTC) - timedelta(hours=2)

        found = kb.collect_garbage(dry_run=True)
        assert [s.file_id for s in found.too_new] == [fresh]
        assert [s.file_id for s in found.deleted] == [old]
        assert {fresh, old} <= set(standin.state.files)

        found = kb.collect_garbage()
        assert [s.file_id for s in found.too_new] == [fresh]
        assert fresh in standin.state.files and old not in standin.state.files


def _make_it_older(settings: Any, embedder: Any, standin: Any) -> dict[str, str]:
    """Turn the knowledge base at `settings` into one written before identities: no identity in
    Chroma, its records referencing files named `kb-<name>-<hash>-p<part>-`. Returns the old
    files' ids by the new ones they replace."""
    renamed: dict[str, str] = {}
    with _opened(settings, embedder) as kb:
        kb_id = kb.index.kb_id
        for doc in kb.index.documents():
            files = []
            for f in doc.files:
                new = standin.state.files.pop(f.file_id)
                name = new.filename.replace(f"-{kb_id}-", "-", 1)
                old = standin.state.add_file(name, new.mime_type, new.data)
                renamed[f.file_id] = old.id
                files.append(RemoteFile(old.id, f.part, f.page_start, f.page_end))
            kb.index.commit(dataclasses.replace(doc, files=tuple(files)))
    name = f"{settings.kb_name}_documents"
    docs = connect(settings).get_collection(name, embedding_function=None)
    docs.delete(ids=["__identity__"])
    return renamed


def test_a_knowledge_base_from_before_identities_keeps_working(
    online_settings: Any, embedder: Any, standin: Any, tmp_path: Path
) -> None:
    settings = online_settings.replace(gc_grace_seconds=0)
    with _opened(settings, embedder) as kb:
        assert ingest_paths(kb, [_corpus(tmp_path / "corpus")]).failed == 0
    old_ids = set(_make_it_older(settings, embedder, standin).values())
    # Another install from before identities, same name, left a file nobody here references.
    theirs = standin.state.add_file(f"kb-default-{'9' * 32}-p0-x.txt", "text/plain", b"theirs")
    uploads = _uploads(standin)

    with _opened(settings, embedder) as kb:
        kb_id = kb.index.kb_id  # given one when opened
        assert _referenced(kb) == old_ids
        listed = {f.file_id for f in kb.files.list()}
        assert listed == old_ids | {theirs.id}

        found = kb.collect_garbage()
        assert found.deleted == [] and [s.file_id for s in found.old_names] == [theirs.id]
        assert old_ids | {theirs.id} <= set(standin.state.files), "gc deleted no old file"

        answer = kb.ask(QUESTION, kb.search(QUESTION))
        assert answer.answered_by == "claude" and "dusk" in answer.text
        assert {d.file_id for d in answer.documents} <= old_ids
        assert _uploads(standin) == uploads, "the old files are used as they are"

        make_pdf(tmp_path / "more" / "ferry.pdf", ["The ferry leaves at nine."])
        assert ingest_paths(kb, [tmp_path / "more"]).counts == {"added": 1}
        (ferry,) = [d for d in kb.index.documents() if d.source.endswith("ferry.pdf")]
        (new_file,) = ferry.files
        assert standin.state.files[new_file.file_id].filename.startswith(f"kb-default-{kb_id}-")

    with _opened(settings, embedder) as kb:
        assert kb.index.kb_id == kb_id
        assert kb.collect_garbage().deleted == []
        assert old_ids | {theirs.id, new_file.file_id} <= set(standin.state.files)

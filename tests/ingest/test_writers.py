"""Another writer deleting a document while an ingest works on it, made to happen at the worst
moment: the ingest's document ends whole (record, chunks, local copy, stored file)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ingest import ingest_paths, ingest_uploads
from kb.blobs import sha256_file


def assert_whole(kb: Any, doc_id: str) -> None:
    doc = kb.index.get(doc_id)
    assert doc is not None
    assert len(kb.index.chunks(doc_id)) == doc.chunk_count >= 1
    assert kb.blobs.has(doc_id)
    assert doc.files and all(kb.files.exists(f.file_id) for f in doc.files)
    hits = kb.index.query(kb.embedder.embed(["harbour ledger fees"])[0], 5)
    assert doc_id in {h.chunk.doc_id for h in hits}


def test_a_new_document_deleted_before_its_commit_is_put_back_whole(
    knowledge_base: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another writer commits the same content and deletes it (record, chunks, stored file,
    local copy) after this run kept its copy, wrote its chunks and uploaded it."""
    kb = knowledge_base
    path = tmp_path / "ledger.txt"
    path.write_text("The harbour ledger records mooring fees for every boat.\n")
    doc_id = sha256_file(path)
    upload = kb.uploads.upload
    deleted: list[str] = []

    def upload_then_another_writer_deletes(doc: Any) -> Any:
        uploaded = upload(doc)
        if not deleted:  # once: the run's own upload, not the one that puts it back
            kb.index.commit(uploaded)
            kb.remove(doc.id)
            deleted.append(doc.id)
        return uploaded

    monkeypatch.setattr(kb.uploads, "upload", upload_then_another_writer_deletes)
    report = ingest_paths(kb, [path])
    monkeypatch.undo()
    assert deleted == [doc_id]
    assert [r.status for r in report.results] == ["added"]
    assert_whole(kb, doc_id)


def test_a_known_document_deleted_before_its_source_is_added_is_read_again(
    knowledge_base: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run read the record at its start; the document is deleted before the new source is
    added: nothing is written back, and the file is ingested again as new."""
    kb = knowledge_base
    path = tmp_path / "ledger.txt"
    path.write_text("The harbour ledger records mooring fees for every boat.\n")
    [first] = ingest_uploads(kb, [(path, "ledger.txt")]).results
    documents = kb.index.documents

    def read_then_another_writer_deletes(**kwargs: Any) -> Any:
        found = documents(**kwargs)
        if kb.index.get(first.doc_id) is not None:
            kb.remove(first.doc_id)
        return found

    monkeypatch.setattr(kb.index, "documents", read_then_another_writer_deletes)
    [again] = ingest_uploads(kb, [(path, "ledger-again.txt")]).results
    monkeypatch.undo()
    assert again.status == "added" and again.doc_id == first.doc_id
    doc = kb.index.get(first.doc_id)
    assert doc is not None and doc.sources == (again.path,)  # the deleted source stays gone
    assert_whole(kb, first.doc_id)

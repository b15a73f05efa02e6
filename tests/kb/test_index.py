"""The Chroma index: model checks, batched writes, the commit point, generations, identity."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from kb.errors import ModelMismatch
from kb.files import KB_ID
from kb.index import Index, connect
from kb.settings import Settings
from kb.types import Chunk, Document, Part


def _doc(doc_id: str, source: str) -> Document:
    return Document(
        id=doc_id,
        title="t",
        kind="text",
        mime_type="text/plain",
        size_bytes=1,
        page_count=1,
        chunk_count=1,
        sources=(source,),
        parts=(Part(0, 1, 1),),
    )


def test_another_model_on_the_same_knowledge_base_is_a_clear_error(settings, embedder) -> None:  # type: ignore[no-untyped-def]
    Index.open(settings, embedder)
    client = connect(settings)
    with pytest.raises(ModelMismatch, match="built with 'all-MiniLM-L6-v2'"):
        Index(client, settings.kb_name, "another-model", 768)
    Index(client, "second", "another-model", 768)  # another knowledge base is fine


def test_writes_are_batched_and_chunks_stay_invisible_until_commit(settings, embedder) -> None:  # type: ignore[no-untyped-def]
    index = Index.open(settings, embedder)
    index.batch_size = 5  # force several batches
    texts = [f"note {i} about tides and harbours" for i in range(12)]
    chunks = [Chunk("d" * 64, 0, i, t, 1, 1) for i, t in enumerate(texts)]
    index.add_chunks(chunks, embedder.embed(texts))
    assert index.chunk_count() == 12
    assert index.query(embedder.embed(["tides"])[0], 3) == []
    assert list(index.iter_chunks()) == []

    before = index.generation()
    index.commit(_doc("d" * 64, "/notes/tides.txt"))
    assert index.generation() != before
    assert len(index.query(embedder.embed(["tides"])[0], 3)) == 3
    assert len(list(index.iter_chunks())) == 12
    assert index.find_by_source("/notes/tides.txt")[0].id == "d" * 64
    assert index.documents(source_prefix="/other") == []

    index.remove("d" * 64)
    assert index.count() == 0 and index.chunk_count() == 0


def test_a_knowledge_base_has_one_identity_that_every_opener_reads(settings, embedder) -> None:  # type: ignore[no-untyped-def]
    first = Index.open(settings, embedder)
    assert KB_ID.fullmatch(first.kb_id)
    assert Index.open(settings, embedder).kb_id == first.kb_id
    first.close()
    assert Index.open(settings, embedder).kb_id == first.kb_id  # kept on disk
    other = Index(connect(settings), "second", embedder.name, embedder.dimension)
    assert other.kb_id != first.kb_id
    index = Index.open(settings, embedder)  # the identity is no document
    assert index.count() == 0 and index.documents() == [] and index.get("__identity__") is None


def _make_collections_without_identity(settings: Settings, model: str, dimension: int) -> None:
    """The collections as versions before identities left them."""
    client = connect(settings)
    meta = {"kb_model": model, "kb_dim": dimension}
    client.create_collection(f"{settings.kb_name}_chunks", metadata=meta, embedding_function=None)
    client.create_collection(
        f"{settings.kb_name}_documents", metadata={"kb_model": model}, embedding_function=None
    )


def test_a_knowledge_base_made_before_identities_gets_one_when_opened(settings, embedder) -> None:  # type: ignore[no-untyped-def]
    _make_collections_without_identity(settings, embedder.name, embedder.dimension)
    index = Index.open(settings, embedder)
    assert KB_ID.fullmatch(index.kb_id)
    assert Index.open(settings, embedder).kb_id == index.kb_id


def test_when_another_process_stores_an_identity_first_its_identity_is_used(  # type: ignore[no-untyped-def]
    settings, embedder, monkeypatch
) -> None:
    client = connect(settings)
    theirs = "0123456789abcdef"

    def another_process_first() -> str:
        docs = client.get_collection(f"{settings.kb_name}_documents", embedding_function=None)
        meta = {"type": "identity", "value": theirs}
        docs.add(ids=["__identity__"], embeddings=[[1.0]], documents=[""], metadatas=[meta])
        return "fedcba9876543210"  # written after theirs: ignored

    monkeypatch.setattr("kb.index.new_kb_id", another_process_first)
    assert Index(client, settings.kb_name, embedder.name, embedder.dimension).kb_id == theirs


def _open_and_report(data_dir: str, model: str, dimension: int, start, ids) -> None:  # type: ignore[no-untyped-def]
    try:
        settings = Settings(data_dir=Path(data_dir))
        client = connect(settings)
        start.wait(timeout=60)
        ids.put(Index(client, settings.kb_name, model, dimension).kb_id)
    except Exception as exc:
        ids.put(f"failed: {exc!r}")


def test_processes_creating_the_identity_at_once_agree(settings, embedder) -> None:  # type: ignore[no-untyped-def]
    # A knowledge base from before identities, opened by several processes at the same moment.
    _make_collections_without_identity(settings, embedder.name, embedder.dimension)
    spawn = multiprocessing.get_context("spawn")
    n = 3
    start, ids = spawn.Barrier(n), spawn.Queue()
    args = (str(settings.data_dir), embedder.name, embedder.dimension, start, ids)
    procs = [spawn.Process(target=_open_and_report, args=args) for _ in range(n)]
    for proc in procs:
        proc.start()
    found = [ids.get(timeout=120) for _ in procs]
    for proc in procs:
        proc.join(timeout=30)
    assert len(set(found)) == 1 and KB_ID.fullmatch(found[0]), found
    assert Index.open(settings, embedder).kb_id == found[0]


def test_a_knowledge_base_an_earlier_version_kept_in_the_shared_chroma_is_not_hidden(
    settings: Settings, embedder: object
) -> None:
    """Before named knowledge bases had directories of their own, `KB_KB_NAME=old` put its
    collections in the data dir's own Chroma: opening `old` now says so instead of opening an
    empty knowledge base in its place."""
    from kb.errors import ConfigError
    from kb.service import open_kb

    model, dimension = embedder.name, embedder.dimension  # type: ignore[attr-defined]
    client = connect(settings)
    Index(client, "old", model, dimension).commit(_doc("a" * 64, "notes.txt"))
    client.close()
    old = settings.for_kb("old")
    with pytest.raises(ConfigError, match=r"knowledge base 'old' is in .*chroma, where an earlier"):
        open_kb(old, embedder=embedder)  # type: ignore[arg-type]
    assert not old.chroma_dir.exists()
    with open_kb(settings.for_kb("new"), embedder=embedder) as new:  # type: ignore[arg-type]
        assert new.index.count() == 0
    old.chroma_dir.mkdir(parents=True)  # what the error says to do to start it afresh
    with open_kb(old, embedder=embedder) as fresh:  # type: ignore[arg-type]
        assert fresh.index.count() == 0

"""The Chroma index: model checks, batched writes, the commit point, generations."""

from __future__ import annotations

import pytest

from kb.errors import ModelMismatch
from kb.index import Index, connect
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

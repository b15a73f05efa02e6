"""The torch embedder: shared by threads (chunking one file while another batch is encoded),
and in bf16 for documents where the CPU has it, with vectors fp32 queries find."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest


def test_token_offsets_and_encoding_run_side_by_side(embedder) -> None:  # type: ignore[no-untyped-def]
    texts = [("word " * (50 + 7 * i)).strip() for i in range(48)]
    long_text = "A sentence about tides and harbours. " * 200
    expected_offsets = embedder.token_offsets(long_text)
    expected = embedder.embed(texts)
    with ThreadPoolExecutor(4) as pool:
        encoded = [pool.submit(embedder.embed, texts) for _ in range(3)]
        offsets = [pool.submit(embedder.token_offsets, long_text) for _ in range(20)]
        assert all(f.result() == expected_offsets for f in offsets)
        for future in encoded:
            assert abs(future.result() - expected).max() < 1e-5
    assert abs((expected**2).sum(axis=1) - 1).max() < 1e-5  # normalised


def test_bf16_vectors_equal_fp32_within_the_tolerance_of_one_collection(embedder) -> None:  # type: ignore[no-untyped-def]
    """`torch-bf16` may extend a collection of fp32 vectors: on real text (prose, figures, a
    table, other scripts, a text longer than the model reads) its vectors stay within 1e-4
    cosine of fp32's, the tolerance fp32 ONNX is held to. It runs on any CPU (slowly without
    AMX), so this holds everywhere."""
    from kb.service import shared_embedder
    from kb.settings import Settings
    from tests.kb.test_onnx_embedding import TEXTS

    bf16 = shared_embedder(Settings(), "torch-bf16")
    assert bf16.backend == "torch-bf16"
    ours, theirs = bf16.embed(TEXTS), embedder.embed(TEXTS)
    assert ours.dtype == theirs.dtype == np.float32
    cosines = (ours * theirs).sum(axis=1)
    assert cosines.min() >= 1 - 1e-4, cosines
    assert cosines.min() < 1 - 1e-7  # bf16 indeed: not the fp32 vectors themselves
    for text in TEXTS:  # the same tokenizer: the same chunks
        assert bf16.token_offsets(text) == embedder.token_offsets(text)


@pytest.mark.parametrize(
    ("hardware", "queries", "chosen", "documents"),
    [
        (True, "onnx", "auto", "torch-bf16"),
        (False, "onnx", "auto", "onnx"),
        (True, "torch", "auto", "torch-bf16"),
        (True, "onnx-int8", "auto", "onnx-int8"),  # bf16 makes fp32's vectors, not int8's
        (True, "onnx", "onnx", "onnx"),
        (False, "torch", "torch-bf16", "torch-bf16"),
    ],
)
def test_the_ingest_backend_is_bf16_where_the_cpu_has_it_and_the_vectors_match(
    monkeypatch: pytest.MonkeyPatch, hardware: bool, queries: str, chosen: str, documents: str
) -> None:
    from kb.service import document_backend
    from kb.settings import Settings

    monkeypatch.setattr("kb.embedding.bf16_in_hardware", lambda: hardware)
    settings = Settings(embed_backend=queries, ingest_backend=chosen)
    assert document_backend(settings) == documents


def test_an_ingest_backend_with_other_vectors_than_the_queries_is_refused() -> None:
    from kb.errors import ConfigError
    from kb.settings import Settings

    with pytest.raises(ConfigError, match="KB_INGEST_BACKEND=onnx-int8 makes other vectors"):
        Settings(embed_backend="onnx", ingest_backend="onnx-int8")
    with pytest.raises(ConfigError, match="KB_INGEST_BACKEND"):
        Settings(ingest_backend="gpu")


def test_documents_embedded_in_bf16_are_found_by_fp32_queries(
    settings, embedder, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """A knowledge base ingested by `torch-bf16` and searched by the (fp32) query model: the
    collection takes both, and each note is found by its own words."""
    from ingest import ingest_paths
    from kb.service import open_kb

    notes = {
        "tides.txt": "Spring tides in the harbour rise two metres above the quay.",
        "bread.txt": "Sourdough needs a starter fed with flour and water every day.",
        "engine.txt": "Change the outboard engine oil after fifty hours of running.",
    }
    folder = tmp_path / "notes"
    folder.mkdir()
    for name, text in notes.items():
        (folder / name).write_text(text)
    with open_kb(settings.replace(ingest_backend="torch-bf16"), embedder=embedder) as kb:
        assert kb.document_embedder.backend == "torch-bf16" and kb.embedder.backend == "torch"
        assert ingest_paths(kb, [folder]).counts == {"added": 3}
        for query, title in [
            ("how high do the tides rise", "tides"),
            ("feeding a sourdough starter", "bread"),
            ("outboard motor oil change interval", "engine"),
        ]:
            assert kb.search(query, k=1, mode="dense")[0].document.title == title

"""The embedder is shared by threads: chunking one file while another batch is encoded."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor


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

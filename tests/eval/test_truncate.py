"""`kb eval --truncate`: corpus records cut to what the model reads, as published figures are."""

from __future__ import annotations

from eval.harness import truncate_to_model


def test_truncation_keeps_exactly_what_the_model_reads(embedder) -> None:  # type: ignore[no-untyped-def]
    text = "Title of a study.\n\n" + " ".join(f"word{i} findings" for i in range(400))
    cut = truncate_to_model(embedder, text)
    assert text.startswith(cut) and len(cut) < len(text)
    assert len(embedder.token_offsets(cut)) == embedder.max_tokens - 2
    short = "A short abstract."
    assert truncate_to_model(embedder, short) == short

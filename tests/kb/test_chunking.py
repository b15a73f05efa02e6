"""Chunking: token windows, overlap, exact offsets and page spans (property tests)."""

from __future__ import annotations

import itertools
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kb.chunking import chunk_pages, chunk_size_for, join_pages
from kb.errors import InvalidInput
from kb.types import Chunk, Page


def whitespace_tokens(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in re.finditer(r"\S+", text)]


words = st.text(alphabet="abcdefghij.,!?", min_size=1, max_size=8)
separators = st.sampled_from([" ", " ", " ", "\n", "\n\n", "  "])
page_texts = st.lists(words, max_size=40).flatmap(
    lambda ws: st.lists(separators, min_size=len(ws), max_size=len(ws)).map(
        lambda seps: "".join(w + s for w, s in zip(ws, seps, strict=True))
    )
)
page_lists = st.lists(page_texts, min_size=1, max_size=5).map(
    lambda texts: [Page(n, t) for n, t in enumerate(texts, start=3)]
)
window = st.integers(min_value=1, max_value=30).flatmap(
    lambda size: st.tuples(st.just(size), st.integers(min_value=0, max_value=size - 1))
)


def token_index(spans: list[tuple[int, int]], chunk: Chunk) -> tuple[int, int]:
    """The [first, last] indexes of the tokens of the whole text that a chunk covers."""
    first = min(i for i, (_, b) in enumerate(spans) if b > chunk.char_start)
    last = max(i for i, (a, _) in enumerate(spans) if a < chunk.char_end)
    return first, last


def page_of(pages: list[Page], position: int) -> int:
    _, starts = join_pages(pages)
    return next(
        p.number for p, s in zip(reversed(pages), reversed(starts), strict=True) if s <= position
    )


def check_invariants(
    pages: list[Page], chunks: list[Chunk], tokenize: Any, size: int, overlap: int
) -> list[tuple[int, int]]:
    text, _ = join_pages(pages)
    spans = tokenize(text)
    if not spans:
        assert chunks == []
        return []
    assert [c.n for c in chunks] == list(range(len(chunks)))
    ranges = [token_index(spans, c) for c in chunks]
    assert ranges[0][0] == 0, "the first token is covered"
    assert ranges[-1][1] == len(spans) - 1, "the last token is covered"
    for chunk, (first, last) in zip(chunks, ranges, strict=True):
        assert chunk.text == text[chunk.char_start : chunk.char_end]
        assert last - first + 1 <= size
        assert len(tokenize(chunk.text)) <= size, "re-tokenized chunk fits the window"
        assert chunk.page_start == page_of(pages, chunk.char_start)
        assert chunk.page_end == page_of(pages, chunk.char_end - 1)
        assert chunk.page_start <= chunk.page_end
    for (first_a, last_a), (first_b, last_b) in itertools.pairwise(ranges):
        assert first_a < first_b, "windows move forward"
        assert last_a < last_b
        assert first_b <= last_a + 1, "no token is skipped between windows"
        assert last_a - first_b + 1 <= overlap, "consecutive windows share at most `overlap`"
    return ranges


@given(pages=page_lists, window=window)
def test_whitespace_tokenizer_properties(pages: list[Page], window: tuple[int, int]) -> None:
    size, overlap = window
    chunks = chunk_pages("doc", 0, pages, whitespace_tokens, size, overlap)
    ranges = check_invariants(pages, chunks, whitespace_tokens, size, overlap)
    # Every token is a word start here, so the overlap is exact unless a window is shorter.
    for (first_a, last_a), (first_b, _) in itertools.pairwise(ranges):
        assert last_a - first_b + 1 == min(overlap, last_a - first_a)


real_text = st.text(
    alphabet=st.characters(
        codec="utf-8", categories=("L", "N", "P", "Zs", "S"), include_characters="\n"
    ),
    max_size=400,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    texts=st.lists(real_text, min_size=1, max_size=3),
    window=st.integers(min_value=4, max_value=40).flatmap(
        lambda size: st.tuples(st.just(size), st.integers(min_value=0, max_value=size - 1))
    ),
)
def test_real_tokenizer_properties(
    embedder: Any, texts: list[str], window: tuple[int, int]
) -> None:
    size, overlap = window
    pages = [Page(n, t) for n, t in enumerate(texts, start=1)]
    chunks = chunk_pages("doc", 1, pages, embedder.token_offsets, size, overlap)
    check_invariants(pages, chunks, embedder.token_offsets, size, overlap)


def test_real_tokenizer_on_words_split_mid_word(embedder: Any) -> None:
    text = " ".join(["electroencephalographically", "antidisestablishmentarianism"] * 60)
    chunks = chunk_pages("doc", 0, [Page(1, text)], embedder.token_offsets, 7, 3)
    check_invariants([Page(1, text)], chunks, embedder.token_offsets, 7, 3)
    assert len(chunks) > 10


def test_chunk_fields_and_ids() -> None:
    pages = [Page(4, "alpha beta gamma"), Page(5, "delta epsilon")]
    chunks = chunk_pages("abc", 2, pages, whitespace_tokens, 3, 1)
    assert [c.text for c in chunks] == ["alpha beta gamma", "gamma\n\ndelta epsilon"]
    assert [c.id for c in chunks] == ["abc:2:0", "abc:2:1"]
    assert [(c.page_start, c.page_end) for c in chunks] == [(4, 4), (4, 5)]
    assert (chunks[1].char_start, chunks[1].char_end) == (11, 31)


def test_single_text_page_offsets_are_file_offsets() -> None:
    text = "  leading spaces then words\nand more words here  "
    chunks = chunk_pages("d", 0, [Page(1, text)], whitespace_tokens, 4, 0)
    assert " ".join(text[c.char_start : c.char_end] for c in chunks).split() == text.split()
    assert chunks[0].char_start == 2


def test_empty_text_gives_no_chunks() -> None:
    assert chunk_pages("d", 0, [], whitespace_tokens, 10, 2) == []
    assert chunk_pages("d", 0, [Page(1, "")], whitespace_tokens, 10, 2) == []
    assert chunk_pages("d", 0, [Page(1, " \n\t "), Page(2, "")], whitespace_tokens, 10, 2) == []


def test_prefers_to_end_at_a_sentence() -> None:
    sentence = "one two three four five six seven eight nine."
    text = " ".join([sentence] * 6)
    chunks = chunk_pages("d", 0, [Page(1, text)], whitespace_tokens, 20, 0)
    # A full window would end mid-sentence at token 20; the sentence ends at token 18.
    assert all(c.text.endswith("nine.") for c in chunks)


def test_prefers_to_end_at_a_page_break() -> None:
    pages = [Page(1, " ".join(["first"] * 18)), Page(2, " ".join(["second"] * 30))]
    chunks = chunk_pages("d", 0, pages, whitespace_tokens, 20, 0)
    assert (chunks[0].page_start, chunks[0].page_end) == (1, 1)
    assert chunks[1].text.startswith("second")


def test_rejects_bad_window() -> None:
    with pytest.raises(InvalidInput):
        chunk_pages("d", 0, [Page(1, "a b")], whitespace_tokens, 0, 0)
    with pytest.raises(InvalidInput):
        chunk_pages("d", 0, [Page(1, "a b")], whitespace_tokens, 5, 5)


def test_chunk_size_for_clamps_to_the_model(embedder: Any) -> None:
    assert embedder.max_tokens == 256
    assert chunk_size_for(embedder, 200) == 200
    assert chunk_size_for(embedder, 1000) == 254
    with pytest.raises(InvalidInput):
        chunk_size_for(embedder, 0)


def test_chunks_of_a_long_document_fit_the_model(embedder: Any) -> None:
    paragraph = (
        "The Harbor 300 dehumidifier removes 120 litres of water per day at 30 °C and 80 % "
        "relative humidity; its condensate pump lifts water 4 m. "
    )
    pages = [Page(n, paragraph * 6) for n in range(1, 6)]
    size = chunk_size_for(embedder, 1000)
    chunks = chunk_pages("d", 0, pages, embedder.token_offsets, size, 40)
    assert len(chunks) >= 3
    for chunk in chunks:
        assert len(embedder.token_offsets(chunk.text)) + 2 <= embedder.max_tokens
    check_invariants(pages, chunks, embedder.token_offsets, size, 40)


def test_a_multi_token_character_never_yields_a_window_inside_the_previous_one(
    embedder,  # type: ignore[no-untyped-def]
) -> None:
    pages = [Page(1, "0:0텡")]  # the Hangul syllable is three tokens
    chunks = chunk_pages("d", 0, pages, embedder.token_offsets, size=4, overlap=2)
    check_invariants(pages, chunks, embedder.token_offsets, 4, 2)

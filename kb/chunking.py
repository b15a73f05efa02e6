"""Chunking: overlapping windows of the embedding model's own tokens, with their page span.

Pages are joined with a blank line into one text. A chunk is the exact slice of that text from
its first token's start to its last token's end, so `text[char_start:char_end] == chunk.text`.
A window holds at most `size` tokens (checked by tokenizing the slice again, since a slice that
starts inside a word can tokenize differently), and consecutive windows share at most `overlap`
tokens and never leave a token out. A window prefers to end at a paragraph, sentence or word
boundary found in its last fifth.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from kb.errors import InvalidInput
from kb.types import Chunk, Page

if TYPE_CHECKING:
    from kb.embedding import Embedder

PAGE_SEPARATOR = "\n\n"
SPECIAL_TOKENS = 2  # [CLS] and [SEP] take two of the positions the model reads
BOUNDARY_REACH = 0.2  # how far back from a full window to look for a natural end

TokenOffsets = Callable[[str], list[tuple[int, int]]]


def chunk_size_for(embedder: Embedder, requested: int) -> int:
    """The requested chunk size, clamped to what the model reads besides its special tokens."""
    if requested < 1:
        raise InvalidInput(f"chunk size must be at least 1 token, got {requested}")
    return max(1, min(requested, embedder.max_tokens - SPECIAL_TOKENS))


def join_pages(pages: Sequence[Page]) -> tuple[str, list[int]]:
    """The pages' text joined with a blank line, and the offset where each page starts."""
    starts: list[int] = []
    position = 0
    for page in pages:
        starts.append(position)
        position += len(page.text) + len(PAGE_SEPARATOR)
    return PAGE_SEPARATOR.join(page.text for page in pages), starts


def chunk_pages(
    doc_id: str,
    part: int,
    pages: Sequence[Page],
    token_offsets: TokenOffsets,
    size: int,
    overlap: int,
) -> list[Chunk]:
    """Split the pages of one document part into token windows (see the module docstring)."""
    if size < 1:
        raise InvalidInput(f"chunk size must be at least 1 token, got {size}")
    if not 0 <= overlap < size:
        raise InvalidInput(f"chunk overlap must be in 0..{size - 1} tokens, got {overlap}")
    text, page_starts = join_pages(pages)
    spans = _units(token_offsets(text)) if text.strip() else []
    if not spans:
        return []
    counts = [0]  # counts[i]: tokens in units[:i]
    for _, _, n in spans:
        counts.append(counts[-1] + n)
    chunks: list[Chunk] = []
    start, previous_end = 0, 0
    while True:
        end = _window_end(text, spans, counts, page_starts, start, size, overlap)
        while end - start > 1 and len(token_offsets(_slice(text, spans, start, end))) > size:
            end -= 1
        if end <= previous_end:  # a multi-token character blocks the way: move the start on
            start += 1
            continue
        previous_end = end
        char_start, char_end = spans[start][0], spans[end - 1][1]
        chunks.append(
            Chunk(
                doc_id=doc_id,
                part=part,
                n=len(chunks),
                text=text[char_start:char_end],
                page_start=_page_at(pages, page_starts, char_start),
                page_end=_page_at(pages, page_starts, char_end - 1),
                char_start=char_start,
                char_end=char_end,
            )
        )
        if end >= len(spans):
            return chunks
        start = max(bisect.bisect_left(counts, counts[end] - overlap), start + 1)


Unit = tuple[int, int, int]  # char start, char end, tokens


def _units(offsets: list[tuple[int, int]]) -> list[Unit]:
    """Tokens grouped where they share characters (one Hangul syllable can be three tokens):
    a chunk never splits a character."""
    units: list[Unit] = []
    for a, b in offsets:
        if b <= a:
            continue
        if units and a < units[-1][1]:
            first, last, n = units[-1]
            units[-1] = (first, max(last, b), n + 1)
        else:
            units.append((a, b, 1))
    return units


def _slice(text: str, spans: list[Unit], start: int, end: int) -> str:
    return text[spans[start][0] : spans[end - 1][1]]


def _window_end(
    text: str,
    spans: list[Unit],
    counts: list[int],
    page_starts: list[int],
    start: int,
    size: int,
    overlap: int,
) -> int:
    """The exclusive end unit of the window at `start`: a natural boundary when one is near."""
    full = max(bisect.bisect_right(counts, counts[start] + size) - 1, start + 1)
    if full == len(spans):
        return full
    least = counts[start] + max(overlap + 1, math.ceil(size * (1 - BOUNDARY_REACH)))
    lowest = max(bisect.bisect_left(counts, least), start + 1)
    best: tuple[int, int] | None = None  # (rank, end)
    for end in range(full, lowest - 1, -1):
        rank = _boundary_rank(text, spans, page_starts, end)
        if rank and (best is None or rank > best[0]):
            best = (rank, end)
            if rank == 4:
                break
    return best[1] if best else full


def _boundary_rank(text: str, spans: list[Unit], page_starts: list[int], end: int) -> int:
    """How natural it is to cut between token end-1 and token end: 4 page, 3 paragraph,
    2 sentence or line, 1 word, 0 inside a word. A heading is kept with what follows it."""
    gap_start, gap_end = spans[end - 1][1], spans[end][0]
    gap = text[gap_start:gap_end]
    if "\n\n" in gap:
        next_page = bisect.bisect_right(page_starts, gap_start)
        if next_page < len(page_starts) and page_starts[next_page] <= gap_end:
            return 4
        line = text[text.rfind("\n", 0, gap_start) + 1 : gap_start]
        return 1 if line.lstrip().startswith("#") else 3
    last = text[spans[end - 1][1] - 1]
    if "\n" in gap or (gap and last in ".!?;:"):
        return 2
    if gap or not (last.isalnum() and text[spans[end][0] : spans[end][0] + 1].isalnum()):
        return 1
    return 0


def _page_at(pages: Sequence[Page], page_starts: list[int], position: int) -> int:
    return pages[bisect.bisect_right(page_starts, position) - 1].number

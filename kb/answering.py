"""Answering: the `Answerer` protocol and the offline extractive one (Claude's is in
`kb/anthropic/answerer.py`).

Offline nothing is generated: the answer is the few sentences of the retrieved chunks that best
match the question, each with its page (or character range), so it reads like an answer
without pretending to be one."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from kb.types import (
    Answer,
    AnswerDone,
    AnswerEvent,
    Chunk,
    Citation,
    CitationDelta,
    Document,
    DocumentHit,
    SentDocument,
    TextDelta,
)

if TYPE_CHECKING:
    from kb.embedding import Embedder
    from kb.settings import Settings


class Answerer(Protocol):
    name: str  # "claude" or "extractive"

    def answer(self, question: str, hits: Sequence[DocumentHit]) -> Answer: ...

    def stream(self, question: str, hits: Sequence[DocumentHit]) -> Iterator[AnswerEvent]:
        """TextDelta and CitationDelta events as they arrive, then one AnswerDone."""
        ...


NO_MODEL_NOTICE = (
    "No model was called: these are the best-matching sentences from your documents, "
    "not an answer. Set ANTHROPIC_API_KEY to have Claude answer with citations."
)

MAX_SENTENCES = 5  # more than this stops reading like an answer
MAX_CANDIDATES = 64  # sentences embedded per question, in retrieval order: bounds its cost
MAX_CHARS = 400  # a longer "sentence" is a table or a run-on line: cut at a word
MIN_WORDS = 4  # shorter fragments are headings, table cells and page footers
LEXICAL_WEIGHT = 0.25  # question words present: rescues exact terms the model blurs
PRIOR_WEIGHT = 0.05  # chunk rank: a strongly retrieved chunk's sentence wins a near tie

_LINE = re.compile(r"[^\S\n]*(\S[^\n]*)")
# A soft line break in wrapped prose: the next line starts in lower case, or a long line runs
# on without closing punctuation into one that is neither blank nor a list item or heading.
_SOFT_BREAK = re.compile(
    r"""(?<=[^\n])\n(?=[^\S\n]*[a-z])
      | (?<=[^\n]{60})(?<![.!?:;\s])\n(?![^\S\n]*(?:[\n#>*•|+-]|\d{1,3}[.)]\s))""",
    re.VERBOSE,
)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")
_MARKER = re.compile(r"(?:[#>*•|+-]+\s+|\d{1,3}[.)]\s+)+")  # heading, quote and list marks
_CLOSED = re.compile(r"[.!?:;][\"')\]*]*\s*$")  # closing punctuation ends the text
_WORD = re.compile(r"[^\W_]+")
_STOPWORDS = frozenset(
    "a an and are as at be by can do does for from has have how i in is it its of on or should "
    "that the there this to was what when where which who why will with my me you your".split()
)


@dataclass(frozen=True, slots=True)
class _Sentence:
    doc: Document
    chunk: Chunk
    start: int  # offsets into chunk.text
    end: int
    rank: int  # of the chunk, over all chunks considered
    cut: bool  # shortened to MAX_CHARS

    @property
    def text(self) -> str:
        return self.chunk.text[self.start : self.end]


class ExtractiveAnswerer:
    """Offline answering: the sentences of the hits' best chunks that best match the question,
    ranked by the embedder (lexical overlap alone without one), each with its citation."""

    name = "extractive"
    chunks_per_doc = 3
    sentences = 3  # shown, best first; at most MAX_SENTENCES

    def __init__(self, settings: Settings, embedder: Embedder | None = None) -> None:
        self._settings = settings
        self._embedder = embedder

    def answer(self, question: str, hits: Sequence[DocumentHit]) -> Answer:
        ranked = sorted(hits, key=lambda h: -h.score)[: self._settings.max_documents]
        chunks = [(h.document, c.chunk) for h in ranked for c in h.chunks[: self.chunks_per_doc]]
        best = self._rank(question, _candidates(chunks))[: min(self.sentences, MAX_SENTENCES)]
        if not best and chunks:  # only headings and numbers: the best passage, shortened
            doc, chunk = chunks[0]
            end = _cut(chunk.text, 0, len(chunk.text))
            best = [_Sentence(doc, chunk, 0, end, 0, end < len(chunk.text.rstrip()))]
        citations = [_citation(s) for s in best]
        lines = [
            f"[{n}] {_display(s.text)}{'…' if s.cut else ''} — {c.title}, {c.where}"
            for n, (s, c) in enumerate(zip(best, citations, strict=True), 1)
        ]
        sent = tuple(SentDocument(h.document.id, h.document.title, h.score, None) for h in ranked)
        text = "\n".join(lines) if lines else "No passages in the knowledge base match."
        return Answer(text, tuple(citations), sent, "extractive", notice=NO_MODEL_NOTICE)

    def stream(self, question: str, hits: Sequence[DocumentHit]) -> Iterator[AnswerEvent]:
        answer = self.answer(question, hits)
        yield TextDelta(answer.text)
        for citation in answer.citations:
            yield CitationDelta(citation)
        yield AnswerDone(answer)

    def _rank(self, question: str, candidates: list[_Sentence]) -> list[_Sentence]:
        """Best first: cosine similarity to the question, plus the lexical bonus and the prior."""
        lexical = _overlap(question, [s.text for s in candidates])
        scores = [
            LEXICAL_WEIGHT * lexical[i] + PRIOR_WEIGHT / (1 + s.rank)
            for i, s in enumerate(candidates)
        ]
        if self._embedder is not None and candidates:
            # A sentence alone loses its topic (a table row "Descale | every 3 months" never
            # names the espresso machine); its document's title gives it back.
            texts = [f"{s.doc.title}: {_display(s.text)}" for s in candidates]
            vectors = self._embedder.embed([question, *texts])
            cosine = vectors[1:] @ vectors[0]
            scores = [score + float(cosine[i]) for i, score in enumerate(scores)]
        order = sorted(range(len(candidates)), key=lambda i: -scores[i])
        return [candidates[i] for i in order]


def _candidates(chunks: Sequence[tuple[Document, Chunk]]) -> list[_Sentence]:
    """Sentences worth showing, in retrieval order, at most MAX_CANDIDATES. Chunks overlap, so
    a sentence already seen (or contained in one seen) is kept once, in its longest form. A line
    that recurs in a document with only its numbers changed is a running header or footer."""
    found: dict[str, _Sentence] = {}  # by their words, lower case
    spans = ((r, d, c, *span) for r, (d, c) in enumerate(chunks) for span in _spans(c.text))
    for rank, doc, chunk, start, end in spans:
        text = chunk.text[start:end]
        if (start == 0 and chunk.n > 0) or not _worth_showing(text):
            continue  # a later chunk begins inside its overlap with the one before, mid-word
        cut_end = _cut(chunk.text, start, end)
        key = " ".join(_WORD.findall(chunk.text[start:cut_end].lower()))
        if any(f" {key} " in f" {seen} " for seen in found):
            continue
        for shorter in [seen for seen in found if f" {seen} " in f" {key} "]:
            del found[shorter]  # cut off at an earlier chunk's edge
        found[key] = _Sentence(doc, chunk, start, cut_end, rank, cut_end < end)
        if len(found) == MAX_CANDIDATES:
            break
    shapes = Counter((s.doc.id, re.sub(r"\d+", "0", key)) for key, s in found.items())
    return [
        s
        for key, s in found.items()
        if _CLOSED.search(s.text) or shapes[s.doc.id, re.sub(r"\d+", "0", key)] == 1
    ]


def _spans(text: str) -> Iterator[tuple[int, int]]:
    """Sentences as (start, end) offsets, without list marks or trailing space. A line break
    ends a sentence (PDF text is full of headings and table rows on lines of their own) unless
    it is a soft break in wrapped prose; a blank line, and so a page break, always does."""
    flat = _SOFT_BREAK.sub(" ", text)  # the same length, so offsets hold in `text`

    def trim(start: int, end: int) -> tuple[int, int]:
        marker = _MARKER.match(flat, start, end)
        start = marker.end() if marker else start
        return start, max(start, len(flat[:end].rstrip(" \t\n|")))

    for line in _LINE.finditer(flat):
        start, end = line.span(1)
        if flat[start] == "#":
            continue  # a Markdown heading names a topic, it answers nothing
        for boundary in _SENTENCE_END.finditer(flat, start, end):
            yield trim(start, boundary.start())
            start = boundary.end()
        yield trim(start, end)


def _worth_showing(text: str) -> bool:
    """Enough words, mostly letters; twice the words without closing punctuation (a heading)."""
    visible = "".join(text.split())
    enough = MIN_WORDS if _CLOSED.search(text) else 2 * MIN_WORDS
    return len(text.split()) >= enough and sum(c.isalpha() for c in visible) >= 0.6 * len(visible)


def _cut(text: str, start: int, end: int) -> int:
    """The end of text[start:end] shortened to MAX_CHARS at a word boundary."""
    if end - start <= MAX_CHARS:
        return end
    space = text.rfind(" ", start, start + MAX_CHARS)
    return len(text[: space if space > start else start + MAX_CHARS].rstrip())


def _overlap(question: str, texts: list[str]) -> list[float]:
    """For each text, the share of the question's words in it, rarer words weighing more (the
    E4 in "what does error E4 mean"); a crude stem matches meal/meals and descale/descaled."""

    def stems(text: str) -> set[str]:
        words = _WORD.findall(text.lower())
        return {(w[:-1] if len(w) > 3 and w[-1] == "s" else w)[:5] for w in words}

    terms = stems(" ".join(w for w in _WORD.findall(question.lower()) if w not in _STOPWORDS))
    found = [stems(text) for text in texts]
    weight = {t: math.log(1 + len(texts) / n) for t in terms if (n := sum(t in f for f in found))}
    total = sum(weight.values()) or 1.0
    return [sum(weight.get(t, 0.0) for t in terms & f) / total for f in found]


def _display(text: str) -> str:
    """One line, without Markdown emphasis, table cells separated by semicolons."""
    return " ".join(text.replace("**", "").replace(" | ", "; ").split())


def _citation(s: _Sentence) -> Citation:
    """A PDF sentence cites its pages. Chunk text is its pages joined by blank lines, so of its
    `breaks` page breaks at most `before` (of `total` blank lines) come before the sentence and
    at least `breaks - (total - before)`: exact when the only blank lines are page breaks, else
    an honest range. A text sentence cites its characters in the file."""
    cite = (s.doc.id, s.doc.title, s.doc.source, s.text)
    chunk = s.chunk
    if s.doc.kind != "pdf":
        offset = chunk.char_start
        return Citation(*cite, char_start=offset + s.start, char_end=offset + s.end)
    breaks = chunk.page_end - chunk.page_start
    before, total = chunk.text.count("\n\n", 0, s.start), chunk.text.count("\n\n")
    low, high = max(0, breaks - (total - before)), min(before, breaks)
    if low > high:  # a chunk that does not hold its page breaks: its whole span
        low, high = 0, breaks
    return Citation(*cite, page_start=chunk.page_start + low, page_end=chunk.page_start + high)

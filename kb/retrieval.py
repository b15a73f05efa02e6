"""Retrieval: chunks from dense (Chroma) and BM25 search, ranked as documents.

Each mode returns candidate chunks; a document's score is its best chunk's score, so text past
the first chunk counts (SciFact train, dense: nDCG@10 0.679 here against 0.660 for the
published first-256-tokens figure).

- `dense`: cosine similarity of the query embedding to the chunk embeddings (`Index.query`).
- `bm25`: BM25 over the same chunks (`kb.lexical.LexicalIndex`).
- `hybrid`: a convex combination of the two, after per-query min-max normalisation of each
  mode's document scores over its candidates (a document missing from one mode's candidates
  gets 0 there): `DENSE_WEIGHT * dense + (1 - DENSE_WEIGHT) * bm25`. `DENSE_WEIGHT` comes from
  the SciFact TRAIN split only: over the grid 0.3 / 0.5 / 0.7, train nDCG@10 was 0.727 / 0.731 /
  0.722 (same corpus and model, document-level runs), and 0.5 gives 0.730 on train through this
  module. `bench/scifact.py` reruns the grid on train.

Every mode reads `candidates(k)` chunks (at least 200) so that fusion sees deep lists.
`search` is safe to call from many threads: the embedder locks its model, the lexical index
swaps immutable snapshots, and the rest is local.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from kb.context import SEPARATOR, document_context
from kb.errors import InvalidInput
from kb.lexical import LexicalIndex, tokenize
from kb.types import SEARCH_MODES, Chunk, ChunkHit, Document, DocumentHit, SearchMode

if TYPE_CHECKING:
    from kb.embedding import Embedder
    from kb.index import Index
    from kb.settings import Settings

MAX_K = 1000
MIN_CANDIDATES = 200
CANDIDATES_PER_DOCUMENT = 5
DENSE_WEIGHT = 0.5
PAGE_KEEP = 100  # a document's best chunks the second pass spreads over 0..1
HEADING_WEIGHT = 0.3  # what a page heading that names the question's words adds to a chunk
VECTOR_CACHE_DOCUMENTS = 16  # documents whose chunks and vectors the second pass keeps at hand
DOC_SHARE = 0.5  # how much of a chunk's score is its document's
CHUNKS_PER_DOC = 3  # chunks per document a search shows
QUESTION_CHUNKS = 16  # chunks per document a question reads: each may bring its page window
PAGE_DENSE_WEIGHT = 0.5  # the fusion weight of dense inside one document
PAGE_POOL = 0.5  # a page's score: its best chunk's plus this share of its second best's

_Scores = dict[str, float]


def candidates(k: int) -> int:
    """How many chunks each mode reads to rank `k` documents."""
    return max(MIN_CANDIDATES, CANDIDATES_PER_DOCUMENT * k)


class Retriever:
    def __init__(self, index: Index, embedder: Embedder, settings: Settings) -> None:
        self.index = index
        self.embedder = embedder
        self.settings = settings
        self.lexical = LexicalIndex(index, settings)
        self._vectors: OrderedDict[tuple[str, str], _DocumentChunks] = OrderedDict()
        self._vectors_lock = threading.Lock()

    def search(
        self,
        query: str,
        *,
        k: int | None = None,
        mode: SearchMode | None = None,
        chunks_per_doc: int = CHUNKS_PER_DOC,
        pages: bool = True,
    ) -> list[DocumentHit]:
        """The `k` best documents for `query`, each with up to `chunks_per_doc` best chunks:
        its own best (`best_chunks`), unless `pages` is False (a ranking of documents only)."""
        return self.search_many(
            [query], k=k, mode=mode, chunks_per_doc=chunks_per_doc, pages=pages
        )[0]

    def search_many(
        self,
        queries: Sequence[str],
        *,
        k: int | None = None,
        mode: SearchMode | None = None,
        chunks_per_doc: int = CHUNKS_PER_DOC,
        pages: bool = True,
    ) -> list[list[DocumentHit]]:
        """`search` for each query: embedded together and sent to Chroma as one query, which
        costs a fraction of one at a time (many questions of a batch)."""
        k = self.settings.search_k if k is None else k
        mode = mode or self.settings.search_mode
        for query in queries:
            _validate(query, k, mode, chunks_per_doc)
        if not queries:
            return []
        n = candidates(k)
        generation = self.index.generation()
        if mode == "bm25":
            vectors: Any = [None] * len(queries)
            dense_hits: list[list[ChunkHit]] = [[] for _ in queries]
        else:
            vectors = self.embedder.embed(queries)
            dense_hits = self.index.query_many(vectors, n)
        found: list[list[DocumentHit]] = []
        for query, vector, dense in zip(queries, vectors, dense_hits, strict=True):
            lexical = (
                self.lexical.search(query, n, generation=generation) if mode != "dense" else []
            )
            if mode == "dense":
                scores, chunk_scores = _best_per_document(dense), _chunk_scores(dense)
            elif mode == "bm25":
                scores, chunk_scores = _best_per_document(lexical), _chunk_scores(lexical)
            else:
                scores = _fuse(_best_per_document(dense), _best_per_document(lexical))
                chunk_scores = _fuse(_chunk_scores(dense), _chunk_scores(lexical))
            hits = self._documents(scores, chunk_scores, [*dense, *lexical], k, chunks_per_doc)
            if pages:
                hits = self.best_chunks(
                    query,
                    hits,
                    mode=mode,
                    chunks_per_doc=chunks_per_doc,
                    vector=vector,
                    generation=generation,
                )
            found.append(hits)
        return found

    def best_chunks(
        self,
        query: str,
        hits: Sequence[DocumentHit],
        *,
        mode: SearchMode | None = None,
        chunks_per_doc: int = CHUNKS_PER_DOC,
        vector: Any = None,
        generation: str | None = None,
    ) -> list[DocumentHit]:
        """The hits, each with its document's own best chunks (see `_own_chunks`)."""
        mode = mode or self.settings.search_mode
        if vector is None and mode != "bm25":
            vector = self.embedder.embed([query])[0]
        if generation is None:
            generation = self.index.generation()
        words = set(tokenize([query])[0])
        bm25 = self.lexical.scores(query, generation) if mode != "dense" else None
        return [
            self._own_chunks(words, vector, bm25, hit, chunks_per_doc, generation) for hit in hits
        ]

    def _own_chunks(
        self,
        words: set[str],
        vector: Any,
        bm25: tuple[Any, Any] | None,
        hit: DocumentHit,
        chunks_per_doc: int,
        generation: str,
    ) -> DocumentHit:
        """The second pass: the document's own best chunks. A long filing's right page is often
        not among the chunks the whole index returns (its neighbours in other filings crowd
        it out), so every chunk of the document is scored again: the dense similarity to
        `vector` and the BM25 score (`bm25`: a snapshot and the query's scores over it), fused
        within the document, plus `HEADING_WEIGHT` of how well its page's heading matches the
        question's `words` (`_DocumentChunks.heading_scores`). The best `PAGE_KEEP` are then
        spread over 0..1, and a chunk's score is its document's scaled by its place among them
        (`DOC_SHARE` of it for the last, all of it for the best), so chunks compare across
        documents. In a PDF the pages are ranked (`_best_per_page`)."""
        import numpy as np

        doc = self._document_chunks(hit.document, generation)
        if not doc.chunks:
            return hit
        dense = (doc.vectors @ vector).astype(np.float64) if vector is not None else None
        lexical = doc.bm25(*bm25) if bm25 is not None else None
        if dense is not None and lexical is not None:  # hybrid: no words in a chunk is 0
            present = np.arange(len(doc.chunks))
            within = PAGE_DENSE_WEIGHT * _scaled(dense) + (1 - PAGE_DENSE_WEIGHT) * _scaled(lexical)
        elif dense is not None:
            present, within = np.arange(len(doc.chunks)), _scaled(dense)
        else:
            assert lexical is not None
            present = np.flatnonzero(lexical > 0)  # bm25 alone: the chunks with the words
            if not len(present):
                return hit
            within = _scaled(lexical[present])
        within = within + HEADING_WEIGHT * doc.heading_scores(words)[present]
        kept = _normalise(_top(within, [doc.ids[i] for i in present], PAGE_KEEP))
        if hit.document.kind == "pdf":
            ranked = _best_per_page(kept, doc.by_id)[:chunks_per_doc]
        else:
            ranked = sorted(kept.items(), key=lambda t: (-t[1], t[0]))[:chunks_per_doc]
        return DocumentHit(
            hit.document,
            hit.score,
            tuple(
                ChunkHit(doc.by_id[c], hit.score * (DOC_SHARE + (1 - DOC_SHARE) * score))
                for c, score in ranked
            ),
        )

    def _document_chunks(self, document: Document, generation: str) -> _DocumentChunks:
        """A document's chunks and vectors (`Index.chunk_vectors`) as the second pass reads
        them, kept for the last `VECTOR_CACHE_DOCUMENTS` documents asked for: reading a long
        filing's vectors costs more than the rest of a search, and the questions of a
        knowledge base return to the same documents. Keyed by the index's generation, so
        nothing is kept past a change."""
        key = (generation, document.id)
        with self._vectors_lock:
            found = self._vectors.get(key)
            if found is not None:
                self._vectors.move_to_end(key)
                return found
        found = _DocumentChunks(document, *self.index.chunk_vectors(document.id))
        with self._vectors_lock:
            self._vectors[key] = found
            while len(self._vectors) > VECTOR_CACHE_DOCUMENTS:
                self._vectors.popitem(last=False)
        return found

    def _documents(
        self,
        scores: _Scores,
        chunk_scores: _Scores,
        hits: Iterable[ChunkHit],
        k: int,
        chunks_per_doc: int,
    ) -> list[DocumentHit]:
        by_doc: dict[str, dict[str, ChunkHit]] = {}
        for hit in hits:
            chunk_id = hit.chunk.id
            by_doc.setdefault(hit.chunk.doc_id, {})[chunk_id] = ChunkHit(
                hit.chunk, chunk_scores[chunk_id]
            )
        ranked = sorted(scores, key=lambda d: (-scores[d], d))
        found = self.index.get_many(ranked[: k + 10])  # a few spare for concurrent removals
        out: list[DocumentHit] = []
        for doc_id in ranked:
            doc = found.get(doc_id)
            if doc is None:
                continue
            best = sorted(by_doc[doc_id].values(), key=lambda h: (-h.score, h.chunk.id))
            out.append(DocumentHit(doc, scores[doc_id], tuple(best[:chunks_per_doc])))
            if len(out) == k:
                break
        return out


def _best_per_page(within: _Scores, chunks: dict[str, Chunk]) -> list[tuple[str, float]]:
    """The best chunk of each page with its page's score (the best page's is 1), best first.
    A page scores its best chunk plus `PAGE_POOL` of its second best: a page where two passages
    match (a statement's heading and its row) is likelier the page than one with a single
    match. One chunk per page: the pages, not one page's passages, compete for the places."""
    by_page: dict[int, list[tuple[float, str]]] = {}
    for chunk_id, score in within.items():
        by_page.setdefault(chunks[chunk_id].page_start, []).append((score, chunk_id))
    pages: list[tuple[str, float]] = []
    for found in by_page.values():
        found.sort(key=lambda t: (-t[0], t[1]))
        second = found[1][0] if len(found) > 1 else 0.0
        pages.append((found[0][1], found[0][0] + PAGE_POOL * second))
    top = max((score for _, score in pages), default=0.0) or 1.0
    return sorted(((c, score / top) for c, score in pages), key=lambda t: (-t[1], t[0]))


class _DocumentChunks:
    """One document's chunks as the second pass scores them, built once per generation: their
    vectors, their ids, and their page headings' words. A heading is a chunk's context after
    the document's own (see `kb.context`); where the document's context has changed since
    ingest, the whole context is the heading (its title's words, in every one, then weigh
    almost nothing)."""

    def __init__(self, document: Document, chunks: list[Chunk], vectors: Any) -> None:
        import numpy as np

        self.chunks = chunks
        self.vectors = vectors
        self.ids = [c.id for c in chunks]
        self.by_id = dict(zip(self.ids, chunks, strict=True))
        own = document_context(document.title, document.source)
        heading = [c.context.removeprefix(own).removeprefix(SEPARATOR) for c in chunks]
        distinct = sorted(set(heading))
        number = {h: i for i, h in enumerate(distinct)}
        self.heading_of = np.array([number[h] for h in heading], dtype=np.intp)
        self.headings = len(distinct)
        self.headings_with: dict[str, list[int]] = {}  # a word: the headings that have it
        for i, words in enumerate(tokenize(distinct)):
            for word in set(words):
                self.headings_with.setdefault(word, []).append(i)
        self._rows: tuple[object, Any, Any] | None = None

    def heading_scores(self, words: set[str]) -> Any:
        """How well each chunk's page heading names what the question asks for, 0..1 within
        the document: the question's `words` in the heading, each weighted by its IDF over the
        document's distinct headings, so that a heading few pages carry ("Consolidated
        Balance Sheets" for "...in the balance sheet") counts most. A field of its own, as a
        title is in BM25F: in the chunk's text the heading's words are a few among many."""
        import numpy as np

        n = self.headings
        raw = np.zeros(n)
        for word in sorted(words):
            found = self.headings_with.get(word)
            if found:
                k = len(found)
                raw[found] += math.log(1 + (n - k + 0.5) / (k + 0.5))
        top = float(raw.max(initial=0.0)) or 1.0
        return raw[self.heading_of] / top

    def bm25(self, snapshot: Any, scores: Any) -> Any:
        """Each chunk's score in `scores` (a `LexicalIndex.scores` array over `snapshot`), 0
        where it has none of the words or is not in the snapshot."""
        import numpy as np

        if scores is None:
            return np.zeros(len(self.chunks))
        if self._rows is None or self._rows[0] is not snapshot:
            position = {chunk_id: i for i, chunk_id in enumerate(self.ids)}
            rows = snapshot.rows_of(self.chunks[0].doc_id)
            at = [position.get(snapshot.chunks[r].id, -1) for r in rows]
            keep = np.array([p >= 0 for p in at], dtype=bool)
            self._rows = (snapshot, np.array(at, dtype=np.intp)[keep], rows[keep])
        _, positions, rows = self._rows
        found = np.zeros(len(self.chunks))
        found[positions] = scores[rows]
        return found


def _validate(query: str, k: int, mode: str, chunks_per_doc: int) -> None:
    if not isinstance(query, str) or not query.strip():
        raise InvalidInput("the query is empty")
    if mode not in SEARCH_MODES:
        raise InvalidInput(f"unknown search mode {mode!r}; use one of {', '.join(SEARCH_MODES)}")
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise InvalidInput(f"k must be an integer from 1 to {MAX_K}, not {k!r}")
    if (
        isinstance(chunks_per_doc, bool)
        or not isinstance(chunks_per_doc, int)
        or chunks_per_doc < 1
    ):
        raise InvalidInput(f"chunks_per_doc must be a positive integer, not {chunks_per_doc!r}")


def _best_per_document(hits: Iterable[ChunkHit]) -> _Scores:
    best: _Scores = {}
    for hit in hits:
        doc_id = hit.chunk.doc_id
        if hit.score > best.get(doc_id, float("-inf")):
            best[doc_id] = hit.score
    return best


def _chunk_scores(hits: Iterable[ChunkHit]) -> _Scores:
    return {hit.chunk.id: hit.score for hit in hits}


def _normalise(scores: _Scores) -> _Scores:
    if not scores:
        return {}
    low, high = min(scores.values()), max(scores.values())
    if high <= low:
        return dict.fromkeys(scores, 1.0)
    return {key: (value - low) / (high - low) for key, value in scores.items()}


def _fuse(dense: _Scores, lexical: _Scores, weight: float | None = None) -> _Scores:
    """`weight * dense + (1 - weight) * bm25` over min-max normalised scores (`DENSE_WEIGHT`
    unless given)."""
    weight = DENSE_WEIGHT if weight is None else weight
    a, b = _normalise(dense), _normalise(lexical)
    return {
        key: weight * a.get(key, 0.0) + (1 - weight) * b.get(key, 0.0)
        for key in a.keys() | b.keys()
    }


def _scaled(scores: Any) -> Any:
    """`_normalise` over a numpy array."""
    import numpy as np

    low, high = scores.min(), scores.max()
    if high <= low:
        return np.ones(len(scores))
    return (scores - low) / (high - low)


def _top(scores: Any, ids: list[str], k: int) -> _Scores:
    """The `k` best of `scores` (a numpy array; `ids` names each), ties to the lower id."""
    import numpy as np

    if len(scores) > k:
        cut = np.partition(scores, len(scores) - k)[len(scores) - k]
        picked = np.flatnonzero(scores >= cut).tolist()
    else:
        picked = list(range(len(scores)))
    best = sorted(picked, key=lambda i: (-scores[i], ids[i]))[:k]
    return {ids[i]: float(scores[i]) for i in best}

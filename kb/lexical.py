"""BM25 over the chunks that are in Chroma, kept in step with the index's generation.

The lexical index is derived state: it is rebuilt from `Index.iter_chunks()` whenever
`Index.generation()` changes (ingest, update, prune, removal), so it works the same against an
embedded Chroma and a Chroma server. A built index is saved under
`kb_dir/bm25/<kb_name>/<generation hash>` so that a fresh process with the same generation
loads it instead of rebuilding: it is written into a temp folder of its own (unique per
process and thread, so `kb serve --workers N` never share one), then renamed; temp folders a
killed process left are removed once `STALE_TEMP_SECONDS` old. Tokenisation: lower-cased words,
English stop words removed, English Snowball stemming (PyStemmer); scoring: bm25s defaults
(Lucene BM25, k1=1.5, b=0.75).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kb.types import Chunk, ChunkHit

if TYPE_CHECKING:
    from kb.index import Index
    from kb.settings import Settings

_CHUNKS_FILE = "chunks.jsonl"
_TEMP = ".tmp-"
STALE_TEMP_SECONDS = 3600.0  # a temp folder unchanged this long is a killed process's
SCORES_KEPT = 8  # queries whose BM25 scores over the whole index are kept
TOKENIZER = "2"  # part of a saved index's name: an index saved with other tokens is not loaded
_MIXED = re.compile(r"\b(?=[^\W_]*[^\W\d_])(?=[^\W_]*\d)[^\W_]+\b")  # letters and digits
_BOUNDARY = re.compile(r"(?<=[^\W\d_])(?=\d)|(?<=\d)(?=[^\W\d_])")


def _with_parts(word: re.Match[str]) -> str:
    return f"{word[0]} {_BOUNDARY.sub(' ', word[0])}"


_local = threading.local()


def _bm25s() -> Any:
    """The bm25s module, its logger (which it sets to DEBUG) kept to warnings: "Building index
    from tokens" is no news to a user of `kb serve`."""
    import bm25s

    logging.getLogger("bm25s").setLevel(logging.WARNING)
    return bm25s


def tokenize(texts: list[str]) -> list[list[str]]:
    """Lower-case words, English stop words dropped, Snowball-stemmed; one list per text.
    A word of letters and digits also gives its parts, so "FY2015" matches "2015" (the year in
    a file name such as ACME_2015_10K) while "p53" still matches "p53"."""
    bm25s = _bm25s()

    stemmer = getattr(_local, "stemmer", None)
    if stemmer is None:  # PyStemmer objects are not safe to share between threads
        import Stemmer

        stemmer = _local.stemmer = Stemmer.Stemmer("english")
    tokens: list[list[str]] = bm25s.tokenize(
        [_MIXED.sub(_with_parts, text) for text in texts],
        stopwords="en",
        stemmer=stemmer.stemWords,
        return_ids=False,
        show_progress=False,
    )
    return tokens


@dataclass(frozen=True)
class _Snapshot:
    generation: str
    chunks: tuple[Chunk, ...]
    model: Any  # bm25s.BM25, or None for an empty index

    @cached_property
    def _rows(self) -> dict[str, Any]:
        import numpy as np

        rows: dict[str, list[int]] = {}
        for i, chunk in enumerate(self.chunks):
            rows.setdefault(chunk.doc_id, []).append(i)
        return {doc_id: np.array(found) for doc_id, found in rows.items()}

    def rows_of(self, doc_id: str) -> Any:
        """The positions of one document's chunks (a numpy array, maybe empty)."""
        import numpy as np

        return self._rows.get(doc_id, np.array([], dtype=int))


class LexicalIndex:
    """A BM25 index of every committed chunk; `search` is safe to call from many threads."""

    def __init__(self, index: Index, settings: Settings | None = None) -> None:
        self._index = index
        self._root = settings.kb_dir / "bm25" / settings.kb_name if settings else None
        self._lock = threading.Lock()
        self._snapshot: _Snapshot | None = None
        self._scores: OrderedDict[tuple[str, str], Any] = OrderedDict()
        self._scores_lock = threading.Lock()

    def search(self, query: str, k: int, *, generation: str | None = None) -> list[ChunkHit]:
        """The `k` best chunks for `query` with a positive BM25 score, best first."""
        import numpy as np

        snap, scores = self.scores(query, generation)
        k = min(k, 0 if scores is None else len(scores))
        if k <= 0:
            return []
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [ChunkHit(snap.chunks[i], float(scores[i])) for i in top if scores[i] > 0]

    def scores(self, query: str, generation: str | None = None) -> tuple[_Snapshot, Any]:
        """The snapshot (of `generation`, read from the index unless given) and every chunk's
        BM25 score for `query` in it, a numpy array in the snapshot's order (None when no word
        of the query is indexed). The last `SCORES_KEPT` queries' are kept: a search reads
        them again for each document it ranks the pages of."""
        snap = self.refresh(generation)
        key = (snap.generation, query)
        with self._scores_lock:
            if key in self._scores:
                self._scores.move_to_end(key)
                return snap, self._scores[key]
        scores = None
        if snap.model is not None:
            vocab = snap.model.vocab_dict
            terms = [t for t in tokenize([query])[0] if t in vocab]
            scores = snap.model.get_scores(terms) if terms else None
        with self._scores_lock:
            self._scores[key] = scores
            while len(self._scores) > SCORES_KEPT:
                self._scores.popitem(last=False)
        return snap, scores

    def refresh(self, generation: str | None = None) -> _Snapshot:
        """The snapshot of `generation` (the index's current one unless given), rebuilt (or
        loaded) first when it is not the one at hand."""
        if generation is None:
            generation = self._index.generation()
        snap = self._snapshot
        if snap is not None and snap.generation == generation:
            return snap
        with self._lock:
            snap = self._snapshot
            if snap is None or snap.generation != generation:
                snap = self._load(generation) or self._build(generation)
                self._snapshot = snap
            return snap

    # -- building and persistence ---------------------------------------------------------

    def _build(self, generation: str) -> _Snapshot:
        bm25s = _bm25s()

        chunks = tuple(self._index.iter_chunks())
        if not chunks:
            return _Snapshot(generation, chunks, None)
        model = bm25s.BM25()
        model.index(tokenize([c.indexed_text for c in chunks]), show_progress=False)
        snap = _Snapshot(generation, chunks, model)
        self._save(snap)
        return snap

    def _dir(self, generation: str) -> Path | None:
        if self._root is None:
            return None
        key = f"{TOKENIZER}:{generation}"
        return self._root / hashlib.sha256(key.encode()).hexdigest()[:24]

    def _save(self, snap: _Snapshot) -> None:
        """Save a built index for other processes. Only a cache: when it cannot be written
        (a full disk), the index in memory serves and nothing is left behind."""
        target = self._dir(snap.generation)
        if target is None or self._root is None:
            return
        tmp: Path | None = None
        try:
            self._root.mkdir(parents=True, exist_ok=True)
            self._remove_stale_temps()
            tmp = Path(tempfile.mkdtemp(prefix=f"{_TEMP}{target.name}-", dir=self._root))
            snap.model.save(str(tmp), show_progress=False)
            with (tmp / _CHUNKS_FILE).open("w", encoding="utf-8") as out:
                for chunk in snap.chunks:
                    out.write(json.dumps(asdict(chunk), ensure_ascii=False) + "\n")
            for old in self._root.iterdir():  # keep only the newest generation
                if old != tmp and not old.name.startswith(_TEMP):
                    shutil.rmtree(old, ignore_errors=True)
            with contextlib.suppress(OSError):  # another process saved this generation first
                tmp.rename(target)
        except OSError:
            pass
        finally:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)  # gone already once renamed

    def _remove_stale_temps(self) -> None:
        """Temp folders of saves a killed process never finished. A live one changes as it is
        written, and a save takes seconds, not `STALE_TEMP_SECONDS`."""
        assert self._root is not None
        cutoff = time.time() - STALE_TEMP_SECONDS
        for entry in self._root.glob(f"{_TEMP}*"):
            with contextlib.suppress(OSError):
                if entry.stat().st_mtime <= cutoff:
                    shutil.rmtree(entry, ignore_errors=True)

    def _load(self, generation: str) -> _Snapshot | None:
        bm25s = _bm25s()

        source = self._dir(generation)
        if source is None or not (source / _CHUNKS_FILE).is_file():
            return None
        try:
            model = bm25s.BM25.load(str(source), show_progress=False)
            with (source / _CHUNKS_FILE).open(encoding="utf-8") as lines:
                chunks = tuple(Chunk(**json.loads(line)) for line in lines)
        except (OSError, ValueError, TypeError, KeyError):
            return None  # unreadable or partial: rebuild from the index
        return _Snapshot(generation, chunks, model)

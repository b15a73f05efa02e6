"""The evaluation harness: ingest a dataset's corpus for real, then run its queries.

The corpus goes through `ingest.ingest_paths` into a throwaway knowledge base under
`data_dir/eval/<name>-<hash>` (the hash covers the dataset's path, its corpus content and the
chunk settings), so a second run finds every file unchanged and ingests nothing. A BEIR record
becomes the text file `docs/<corpus id>.txt` holding `title + "\n\n" + text`; hits map back to
corpus ids through the document's source paths. Queries go through `Retriever.search`, the
same call the API makes, ranked at document level.

Chunk size: the eval knowledge base uses chunks of the model's full input (256 tokens minus
the two special tokens) unless told otherwise, so a SciFact abstract's first chunk is exactly
what the published dense figure embeds (the text truncated at 256 tokens).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from urllib.parse import quote, unquote

from eval import metrics
from eval.datasets import Dataset, iter_corpus
from kb.embedding import Embedder
from kb.errors import InvalidInput
from kb.service import KnowledgeBase, open_kb
from kb.settings import Settings
from kb.types import SEARCH_MODES, DocumentHit, FileResult, SearchMode

DOCS_DIR = "docs"


@dataclass(frozen=True, slots=True)
class ModeResult:
    mode: str
    metrics: dict[str, float]
    per_query: dict[str, dict[str, float]]
    rankings: dict[str, list[str]]  # query id -> corpus ids, best first
    latency_ms: dict[str, float]  # query id -> milliseconds

    @property
    def p50_ms(self) -> float:
        return _percentile(list(self.latency_ms.values()), 50)

    @property
    def p95_ms(self) -> float:
        return _percentile(list(self.latency_ms.values()), 95)


@dataclass
class EvalReport:
    dataset: str
    split: str
    queries: int
    documents: int
    data_dir: str
    ingest: dict[str, int] = field(default_factory=dict)
    ingest_seconds: float = 0.0
    modes: list[ModeResult] = field(default_factory=list)


def eval_settings(
    settings: Settings, dataset: Dataset, chunk_tokens: int, truncate: bool = False
) -> Settings:
    """Settings of the dataset's own embedded knowledge base, offline, reused across runs."""
    import hashlib

    from kb.embedding import VECTORS

    key = f"{dataset.corpus_hash()}:{settings.embedding_model}:{chunk_tokens}:"
    key += str(settings.chunk_overlap) + (":truncated" if truncate else "")
    if (vectors := VECTORS.get(settings.embed_backend, "fp32")) != "fp32":
        key += f":{vectors}"  # its own index: other vectors (fp32 ones keep their old key)
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return settings.replace(
        data_dir=settings.data_dir / "eval" / f"{dataset.name}-{digest}",
        chroma_path=None,
        chroma_url=None,
        kb_name="eval",
        chunk_tokens=chunk_tokens,
        anthropic_api_key=None,
    )


def materialise(
    dataset: Dataset, target: Path, truncate: Callable[[str], str] | None = None
) -> Path:
    """The folder to ingest: the user's files, or one text file per BEIR corpus record
    (cut by `truncate` when given)."""
    if not dataset.is_beir:
        return dataset.files_dir
    target.mkdir(parents=True, exist_ok=True)
    wanted: set[str] = set()
    for record in iter_corpus(dataset):
        path = target / (quote(record.id, safe="") + ".txt")
        wanted.add(path.name)
        text = f"{record.title}\n\n{record.text}" if record.title else record.text
        data = (truncate(text) if truncate else text).encode("utf-8")
        if not path.is_file() or path.read_bytes() != data:
            path.write_bytes(data)
    for stale in target.glob("*.txt"):
        if stale.name not in wanted:
            stale.unlink()
    return target


def truncate_to_model(embedder: Embedder, text: str) -> str:
    """The part of `text` the model reads (as MTEB scores SciFact): its first tokens."""
    offsets = embedder.token_offsets(text)
    limit = embedder.max_tokens - 2  # [CLS] and [SEP]
    return text if len(offsets) <= limit else text[: offsets[limit - 1][1]]


def corpus_ids(hit: DocumentHit, root: Path, beir: bool) -> list[str]:
    """The corpus ids of a hit: every source of the document inside the ingested folder."""
    ids = []
    for source in hit.document.sources:
        path = Path(source)
        if not path.is_relative_to(root):
            continue
        relative = path.relative_to(root).as_posix()
        ids.append(unquote(relative.removesuffix(".txt")) if beir else relative)
    return ids


def run_eval(
    dataset: Dataset,
    settings: Settings,
    embedder: Embedder,
    *,
    modes: Sequence[SearchMode] = SEARCH_MODES,
    ks: Sequence[int] = (10, 100),
    limit_queries: int | None = None,
    chunk_tokens: int | None = None,
    truncate: bool = False,
    progress: Callable[[FileResult], None] | None = None,
    on_start: Callable[[int], None] | None = None,
) -> EvalReport:
    from ingest import ingest_paths

    bad = [m for m in modes if m not in SEARCH_MODES]
    if bad or not modes:
        known = ", ".join(SEARCH_MODES)
        raise InvalidInput(f"unknown mode {bad[0] if bad else ''!r}; use {known}")
    if not ks or min(ks) < 1:
        raise InvalidInput("every k must be a positive integer")
    size = chunk_tokens or embedder.max_tokens
    local = eval_settings(settings, dataset, size, truncate)
    with open_kb(local, embedder=embedder) as kb:
        cut = partial(truncate_to_model, embedder) if truncate else None
        root = materialise(dataset, local.data_dir / DOCS_DIR, cut).resolve()
        ingested = ingest_paths(kb, [root], prune=True, progress=progress, on_start=on_start)
        queries = dict(list(dataset.queries.items())[:limit_queries])
        qrels = {q: dataset.qrels[q] for q in queries}
        report = EvalReport(
            dataset.name,
            dataset.split,
            len(queries),
            kb.index.count(),
            str(local.data_dir),
            ingested.counts,
            round(ingested.seconds, 2),
        )
        for mode in modes:
            report.modes.append(_run_mode(kb, mode, queries, qrels, ks, root, dataset.is_beir))
        return report


def _run_mode(
    kb: KnowledgeBase,
    mode: SearchMode,
    queries: dict[str, str],
    qrels: metrics.Qrels,
    ks: Sequence[int],
    root: Path,
    beir: bool,
) -> ModeResult:
    depth = max(ks)
    kb.search("warm up", k=1, mode=mode)  # builds the BM25 index outside the timings
    rankings: dict[str, list[str]] = {}
    latency: dict[str, float] = {}
    for qid, text in queries.items():
        started = time.perf_counter()
        hits = kb.search(text, k=depth, mode=mode, chunks_per_doc=1, pages=False)
        latency[qid] = (time.perf_counter() - started) * 1000
        ranking = [cid for hit in hits for cid in corpus_ids(hit, root, beir)]
        rankings[qid] = list(dict.fromkeys(ranking))
    evaluation = metrics.evaluate(rankings, qrels, ks)
    return ModeResult(mode, evaluation.mean, evaluation.per_query, rankings, latency)


def _percentile(values: list[float], q: int) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]

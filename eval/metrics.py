"""Ranking metrics with the standard (trec_eval / BEIR) definitions.

A ranking is a sequence of document ids, best first (duplicates after the first are ignored);
a query's qrels map document ids to graded relevance, where a grade above 0 is relevant.

- nDCG@k: sum of grade / log2(rank + 1) over the top k, divided by the same sum over the
  ideal ordering of the qrels' grades (linear gain, trec_eval `ndcg_cut`).
- Recall@k: relevant documents in the top k / all relevant documents.
- MRR@k: 1 / rank of the first relevant document in the top k (0 when none).
- MAP@k: sum of precision at each relevant rank in the top k / all relevant documents
  (trec_eval `map_cut`).
- Hit rate@k: 1 when any relevant document is in the top k.

`evaluate` averages over the queries that have qrels; a query with qrels and no ranking counts
as 0. Per-query values are kept for inspection.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

Qrels = Mapping[str, Mapping[str, int]]


def _top(ranking: Sequence[str], k: int) -> list[str]:
    if k < 1:
        raise ValueError(f"k must be at least 1, not {k}")
    return list(dict.fromkeys(ranking))[:k]


def _relevant(qrel: Mapping[str, int]) -> set[str]:
    return {doc for doc, grade in qrel.items() if grade > 0}


def ndcg_at_k(ranking: Sequence[str], qrel: Mapping[str, int], k: int) -> float:
    gains = [max(qrel.get(doc, 0), 0) for doc in _top(ranking, k)]
    dcg = sum(g / math.log2(i + 2) for i, g in enumerate(gains))
    ideal = sorted((g for g in qrel.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at_k(ranking: Sequence[str], qrel: Mapping[str, int], k: int) -> float:
    relevant = _relevant(qrel)
    if not relevant:
        return 0.0
    return sum(doc in relevant for doc in _top(ranking, k)) / len(relevant)


def mrr_at_k(ranking: Sequence[str], qrel: Mapping[str, int], k: int) -> float:
    relevant = _relevant(qrel)
    for i, doc in enumerate(_top(ranking, k)):
        if doc in relevant:
            return 1.0 / (i + 1)
    return 0.0


def map_at_k(ranking: Sequence[str], qrel: Mapping[str, int], k: int) -> float:
    relevant = _relevant(qrel)
    if not relevant:
        return 0.0
    found = 0
    total = 0.0
    for i, doc in enumerate(_top(ranking, k)):
        if doc in relevant:
            found += 1
            total += found / (i + 1)
    return total / len(relevant)


def hit_rate_at_k(ranking: Sequence[str], qrel: Mapping[str, int], k: int) -> float:
    relevant = _relevant(qrel)
    return 1.0 if any(doc in relevant for doc in _top(ranking, k)) else 0.0


METRICS: dict[str, Callable[[Sequence[str], Mapping[str, int], int], float]] = {
    "ndcg": ndcg_at_k,
    "recall": recall_at_k,
    "mrr": mrr_at_k,
    "map": map_at_k,
    "hit_rate": hit_rate_at_k,
}


@dataclass(frozen=True, slots=True)
class Evaluation:
    mean: dict[str, float]  # e.g. {"ndcg@10": 0.64, "recall@100": 0.92, ...}
    per_query: dict[str, dict[str, float]]
    queries: int


def evaluate(
    run: Mapping[str, Sequence[str]], qrels: Qrels, ks: Sequence[int] = (10, 100)
) -> Evaluation:
    """Every metric at every k for each query with qrels, and their means."""
    names = [f"{name}@{k}" for name in METRICS for k in ks]
    per_query: dict[str, dict[str, float]] = {}
    for qid, qrel in qrels.items():
        ranking = run.get(qid, ())
        per_query[qid] = {
            f"{name}@{k}": fn(ranking, qrel, k) for name, fn in METRICS.items() for k in ks
        }
    n = len(per_query)
    mean = {m: (sum(q[m] for q in per_query.values()) / n if n else 0.0) for m in names}
    return Evaluation(mean, per_query, n)

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eval import metrics

LOG2_3 = math.log2(3)


def test_ndcg_hand_computed_binary() -> None:
    qrel = {"a": 1, "b": 1}
    # relevant at ranks 1 and 3: DCG = 1 + 1/log2(4); IDCG = 1 + 1/log2(3)
    expected = (1 + 1 / 2) / (1 + 1 / LOG2_3)
    assert metrics.ndcg_at_k(["a", "x", "b"], qrel, 10) == pytest.approx(expected)


def test_ndcg_graded_uses_linear_gain_and_ideal_from_qrels() -> None:
    qrel = {"a": 2, "b": 1, "c": 0}
    dcg = 1 / 1 + 2 / LOG2_3  # b first, a second
    idcg = 2 / 1 + 1 / LOG2_3
    assert metrics.ndcg_at_k(["b", "a", "c"], qrel, 10) == pytest.approx(dcg / idcg)
    # relevant documents outside the cut-off still count in the ideal
    assert metrics.ndcg_at_k(["x", "a"], {"a": 1, "b": 1, "c": 1}, 2) == pytest.approx(
        (1 / LOG2_3) / (1 + 1 / LOG2_3)
    )


def test_recall_mrr_map_hit_rate_hand_computed() -> None:
    qrel = {"a": 1, "b": 1, "c": 1, "z": 0}
    ranking = ["x", "a", "z", "b", "y"]
    assert metrics.recall_at_k(ranking, qrel, 5) == pytest.approx(2 / 3)
    assert metrics.recall_at_k(ranking, qrel, 2) == pytest.approx(1 / 3)
    assert metrics.mrr_at_k(ranking, qrel, 5) == pytest.approx(1 / 2)
    assert metrics.mrr_at_k(ranking, qrel, 1) == 0.0
    assert metrics.map_at_k(ranking, qrel, 5) == pytest.approx((1 / 2 + 2 / 4) / 3)
    assert metrics.hit_rate_at_k(ranking, qrel, 1) == 0.0
    assert metrics.hit_rate_at_k(ranking, qrel, 2) == 1.0


def test_duplicates_in_a_ranking_count_once() -> None:
    assert metrics.recall_at_k(["a", "a", "a"], {"a": 1, "b": 1}, 3) == pytest.approx(0.5)
    assert metrics.ndcg_at_k(["a", "a", "b"], {"a": 1, "b": 1}, 2) == pytest.approx(1.0)


def test_k_must_be_positive() -> None:
    with pytest.raises(ValueError):
        metrics.ndcg_at_k(["a"], {"a": 1}, 0)


def test_evaluate_averages_over_queries_with_qrels_and_keeps_per_query() -> None:
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}}
    run = {"q1": ["a"], "q3": ["c"]}  # q2 has no ranking (counts 0); q3 has no qrels (ignored)
    result = metrics.evaluate(run, qrels, ks=(1, 10))
    assert result.queries == 2
    assert result.mean["ndcg@1"] == pytest.approx(0.5)
    assert result.mean["recall@10"] == pytest.approx(0.5)
    assert result.per_query["q1"]["mrr@10"] == 1.0
    assert result.per_query["q2"]["hit_rate@10"] == 0.0
    assert set(result.per_query) == {"q1", "q2"}


ids = st.sampled_from([f"d{i}" for i in range(12)])
qrel_strategy = st.dictionaries(ids, st.integers(0, 3), min_size=1, max_size=8)
ranking_strategy = st.lists(ids, max_size=15)
k_strategy = st.integers(1, 20)


@given(ranking_strategy, qrel_strategy, k_strategy)
def test_every_metric_is_between_0_and_1(ranking: list[str], qrel: dict[str, int], k: int) -> None:
    for fn in metrics.METRICS.values():
        assert 0.0 <= fn(ranking, qrel, k) <= 1.0 + 1e-12


@given(qrel_strategy, k_strategy)
def test_a_perfect_ranking_scores_1(qrel: dict[str, int], k: int) -> None:
    if not any(g > 0 for g in qrel.values()):
        return
    ideal = sorted((d for d, g in qrel.items() if g > 0), key=lambda d: -qrel[d])
    relevant = len(ideal)
    assert metrics.ndcg_at_k(ideal, qrel, k) == pytest.approx(1.0)
    assert metrics.mrr_at_k(ideal, qrel, k) == 1.0
    assert metrics.hit_rate_at_k(ideal, qrel, k) == 1.0
    assert metrics.recall_at_k(ideal, qrel, k) == pytest.approx(min(k, relevant) / relevant)
    assert metrics.map_at_k(ideal, qrel, k) == pytest.approx(min(k, relevant) / relevant)


@given(ranking_strategy, qrel_strategy, k_strategy)
def test_recall_and_hit_rate_never_fall_as_k_grows(
    ranking: list[str], qrel: dict[str, int], k: int
) -> None:
    for fn in (metrics.recall_at_k, metrics.hit_rate_at_k, metrics.mrr_at_k, metrics.map_at_k):
        assert fn(ranking, qrel, k) <= fn(ranking, qrel, k + 1) + 1e-12


@given(ranking_strategy, qrel_strategy, k_strategy)
def test_moving_a_relevant_document_up_never_lowers_ndcg(
    ranking: list[str], qrel: dict[str, int], k: int
) -> None:
    ranking = list(dict.fromkeys(ranking))
    for i in range(1, len(ranking)):
        if qrel.get(ranking[i], 0) > qrel.get(ranking[i - 1], 0):
            better = [*ranking[: i - 1], ranking[i], ranking[i - 1], *ranking[i + 1 :]]
            before = metrics.ndcg_at_k(ranking, qrel, k)
            assert metrics.ndcg_at_k(better, qrel, k) >= before - 1e-12

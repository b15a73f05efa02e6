from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.datasets import load_dataset, read_qrels
from kb.errors import InvalidInput


def make(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


def queries(*ids: str) -> str:
    return "".join(json.dumps({"_id": i, "text": f"query {i}"}) + "\n" for i in ids)


HEADER = "query-id\tcorpus-id\tscore\n"
CORPUS = '{"_id": "d1", "title": "T", "text": "x"}\n'


def test_scifact_layout_splits(tmp_path: Path) -> None:
    root = make(
        tmp_path,
        {
            "corpus.jsonl": CORPUS,
            "queries.jsonl": queries("1", "2"),
            "queries_train.jsonl": queries("7"),
            "qrels.tsv": HEADER + "1\td1\t1\n",
            "qrels_train.tsv": HEADER + "7\td1\t2\n",
        },
    )
    test = load_dataset(root)
    assert test.queries == {"1": "query 1"} and test.qrels == {"1": {"d1": 1}}
    train = load_dataset(root, "train")
    assert train.queries == {"7": "query 7"} and train.qrels == {"7": {"d1": 2}}
    assert test.is_beir and test.corpus_hash() == train.corpus_hash()


def test_standard_beir_qrels_folder_wins(tmp_path: Path) -> None:
    root = make(
        tmp_path,
        {
            "corpus.jsonl": CORPUS,
            "queries.jsonl": queries("1", "2"),
            "qrels/test.tsv": HEADER + "2\td1\t1\n",
            "qrels.tsv": HEADER + "1\td1\t1\n",
        },
    )
    assert load_dataset(root).qrels == {"2": {"d1": 1}}
    with pytest.raises(InvalidInput, match="no qrels for split 'dev'"):
        load_dataset(root, "dev")


def test_corpus_hash_follows_content(tmp_path: Path) -> None:
    root = make(
        tmp_path,
        {"corpus.jsonl": CORPUS, "queries.jsonl": queries("1"), "qrels.tsv": HEADER + "1\td1\t1\n"},
    )
    before = load_dataset(root).corpus_hash()
    (root / "corpus.jsonl").write_text(CORPUS.replace('"x"', '"y"'), encoding="utf-8")
    assert load_dataset(root).corpus_hash() != before


@pytest.mark.parametrize(
    ("qrels", "message"),
    [
        ("1\td1\t1\n", "first row"),
        (HEADER + "1\td1\n", "3 tab-separated"),
        (HEADER + "1\td1\thigh\n", "not a number"),
        (HEADER, "no judgements"),
    ],
)
def test_malformed_qrels(tmp_path: Path, qrels: str, message: str) -> None:
    path = tmp_path / "qrels.tsv"
    path.write_text(qrels, encoding="utf-8")
    with pytest.raises(InvalidInput, match=message):
        read_qrels(path)


def test_qrels_query_missing_from_queries(tmp_path: Path) -> None:
    root = make(
        tmp_path,
        {"corpus.jsonl": CORPUS, "queries.jsonl": queries("1"), "qrels.tsv": HEADER + "9\td1\t1\n"},
    )
    with pytest.raises(InvalidInput, match=r"not in queries\.jsonl"):
        load_dataset(root)


def test_folder_without_corpus(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"neither corpus\.jsonl"):
        load_dataset(tmp_path)

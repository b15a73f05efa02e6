"""`kb eval` end to end on small datasets built here: real ingest, real model, real Chroma."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kb.cli import main

CORPUS = [
    ("d1", "Insulin and blood sugar", "Insulin lowers blood glucose by moving sugar into cells."),
    ("d2", "Volcano eruptions", "Magma rises through the crust and erupts as lava and ash."),
    ("d3", "Bee pollination", "Honey bees pollinate flowering crops such as almonds."),
    ("d4", "Tidal forces", "The moon's gravity raises tides in the oceans twice a day."),
    ("d/5", "Vaccines", "Vaccines train the immune system to recognise a pathogen."),
]
QUERIES = {
    "q1": "What hormone reduces glucose in the blood?",
    "q2": "Which insects pollinate almond trees?",
    "q3": "How do immunisations protect against disease?",
    "q4": "What causes ocean tides?",
}
QRELS = {"q1": {"d1": 1}, "q2": {"d3": 2, "d2": 0}, "q3": {"d/5": 1}}  # q4: no qrels


def write_jsonl(path: Path, rows: list[dict[str, str]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def write_qrels(path: Path, qrels: dict[str, dict[str, int]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["query-id\tcorpus-id\tscore"]
    lines += [f"{q}\t{d}\t{g}" for q, docs in qrels.items() for d, g in docs.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture
def beir(tmp_path: Path) -> Path:
    root = tmp_path / "tiny"
    root.mkdir()
    write_jsonl(root / "corpus.jsonl", [{"_id": i, "title": t, "text": x} for i, t, x in CORPUS])
    write_jsonl(root / "queries.jsonl", [{"_id": q, "text": t} for q, t in QUERIES.items()])
    write_qrels(root / "qrels" / "test.tsv", QRELS)
    return root


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, embedder: Any) -> Path:
    """KB_DATA_DIR in a temp dir; the session's real model instead of loading another copy."""
    data_dir = tmp_path / "kbdata"
    monkeypatch.setenv("KB_DATA_DIR", str(data_dir))
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setattr("kb.service.load_embedder", lambda settings, backend=None: embedder)
    return data_dir


def test_kb_eval_json_end_to_end(beir: Path, env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", str(beir), "--json", "--k", "1,3"]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert "ingest" in captured.err  # the progress bar
    assert out["queries"] == 3 and out["documents"] == 5
    assert out["ingest"] == {"added": 5}
    assert set(out["modes"]) == {"dense", "bm25", "hybrid"}
    for mode in ("dense", "hybrid"):
        result = out["modes"][mode]
        assert result["metrics"]["hit_rate@3"] == 1.0
        assert set(result["per_query"]) == {"q1", "q2", "q3"}
    q3 = out["modes"]["hybrid"]["per_query"]["q3"]
    assert q3["ranking"][0] == "d/5"  # ids with a slash survive the file-name round trip
    assert q3["ndcg@1"] == 1.0
    assert Path(out["data_dir"]).parent == env / "eval"

    # a second run reuses the ingested knowledge base
    assert main(["eval", str(beir), "--json", "--mode", "bm25", "--limit-queries", "2"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["ingest"] == {"unchanged": 5}
    assert again["data_dir"] == out["data_dir"]
    assert again["queries"] == 2 and list(again["modes"]) == ["bm25"]


def test_kb_eval_prints_a_table(beir: Path, env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", str(beir), "--mode", "hybrid"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "ingest: 5 added in" in lines[0]  # counts in words, not a Python dict
    assert lines[1].split() == [
        "mode",
        "nDCG@10",
        "Recall@10",
        "Recall@100",
        "MRR@10",
        "p50",
        "ms",
        "p95",
        "ms",
    ]
    row = lines[2].split()
    assert row[0] == "hybrid" and float(row[1]) == pytest.approx(1.0, abs=0.2)


def test_own_files_dataset(tmp_path: Path, env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "mine"
    (root / "corpus" / "notes").mkdir(parents=True)
    (root / "corpus" / "bees.txt").write_text(CORPUS[2][2], encoding="utf-8")
    (root / "corpus" / "notes" / "tides.md").write_text("# Tides\n\n" + CORPUS[3][2])
    write_jsonl(root / "queries.jsonl", [{"_id": "t", "text": QUERIES["q4"]}])
    write_qrels(root / "qrels.tsv", {"t": {"notes/tides.md": 1}})
    assert main(["eval", str(root), "--json", "--mode", "bm25", "--k", "2"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["modes"]["bm25"]["per_query"]["t"]["ranking"][0] == "notes/tides.md"
    assert out["modes"]["bm25"]["metrics"]["mrr@2"] == 1.0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--k", "ten"], "--k"),
        (["--k", "0"], "positive"),
        (["--split", "dev"], "no qrels for split 'dev'"),
        (["--limit-queries", "0"], "--limit-queries"),
    ],
)
def test_bad_arguments_are_clear_errors(
    beir: Path, env: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    assert main(["eval", str(beir), *extra]) == 2
    assert message in capsys.readouterr().err


def test_a_missing_or_malformed_dataset_is_a_clear_error(
    tmp_path: Path, env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["eval", str(tmp_path / "nope")]) == 2
    assert "dataset folder not found" in capsys.readouterr().err
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "corpus.jsonl").write_text('{"_id": "1", "text": "x"}\n')
    (bad / "queries.jsonl").write_text("not json\n")
    write_qrels(bad / "qrels.tsv", {"1": {"1": 1}})
    assert main(["eval", str(bad)]) == 2
    assert "queries.jsonl:1: not JSON" in capsys.readouterr().err

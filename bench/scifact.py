"""Tune the hybrid fusion weight on the SciFact TRAIN split (never on test).

    .venv/bin/python bench/scifact.py [DATASET_DIR] [--weights 0.3,0.4,0.5,0.6,0.7]

Reuses the knowledge base that `kb eval` ingested for the dataset (same KB_DATA_DIR), runs the
train queries through `Retriever.search(mode="hybrid")` once per weight and prints nDCG@10 and
Recall@100 for each; the best weight goes into `kb.retrieval.DENSE_WEIGHT`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from eval.datasets import load_dataset
from eval.harness import run_eval
from kb import retrieval
from kb.service import load_embedder
from kb.settings import Settings

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", nargs="?", default=str(DEFAULT))
    parser.add_argument("--weights", default="0.3,0.4,0.5,0.6,0.7")
    args = parser.parse_args()
    dataset = load_dataset(args.dataset, "train")
    settings = Settings.from_env()
    embedder = load_embedder(settings)
    print("dense_weight  nDCG@10  Recall@100")
    for weight in (float(w) for w in args.weights.split(",")):
        retrieval.DENSE_WEIGHT = weight
        report = run_eval(dataset, settings, embedder, modes=("hybrid",), ks=(10, 100))
        m = report.modes[0].metrics
        print(f"{weight:<12}  {m['ndcg@10']:.4f}   {m['recall@100']:.4f}", flush=True)


if __name__ == "__main__":
    main()

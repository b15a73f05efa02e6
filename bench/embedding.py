"""The embedding backends side by side: throughput on the same texts, and how close the vectors are.

    python bench/embedding.py [--texts 256] [--rounds 3] [--corpus ../shared/data/scifact]

Embeds the same texts (SciFact abstracts when the corpus is there, generated prose otherwise)
with torch (fp32 and bf16), ONNX fp32 and ONNX int8, one backend after the other in each round,
so that a shared machine's load falls on all of them alike; prints each backend's median
texts/s, its speed over torch, and the lowest and mean cosine of its vectors to torch's.
(`torch-bf16` is fast only where the CPU does bf16 in hardware: Intel AMX.)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

SCIFACT = Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact"


def texts(corpus: Path, n: int) -> list[str]:
    path = corpus / "corpus.jsonl"
    if path.is_file():
        with path.open() as lines:
            records = [json.loads(line) for _, line in zip(range(n), lines, strict=False)]
        return [f"{r['title']}\n{r['text']}" for r in records]
    rng = random.Random(3)
    words = "revenue margin pump valve harbour tide audit ledger quarter policy".split()
    return [" ".join(rng.choice(words) for _ in range(rng.randint(20, 220))) for _ in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--corpus", type=Path, default=SCIFACT)
    args = parser.parse_args()

    from kb.embedding import bf16_in_hardware
    from kb.service import load_embedder
    from kb.settings import Settings

    sample = texts(args.corpus, args.texts)
    with tempfile.TemporaryDirectory() as tmp:
        base = Settings.from_env().replace(data_dir=Path(tmp))
        backends = ("torch", "torch-bf16", "onnx", "onnx-int8")
        embedders = {b: load_embedder(base, b) for b in backends}
        seconds: dict[str, list[float]] = {b: [] for b in embedders}
        vectors = {}
        for e in embedders.values():
            e.embed(sample[:8])  # warm up
        for _ in range(args.rounds):
            for backend, embedder in embedders.items():
                started = time.perf_counter()
                vectors[backend] = embedder.embed(sample)
                seconds[backend].append(time.perf_counter() - started)
    torch_s = statistics.median(seconds["torch"])
    print(
        f"{len(sample)} texts, {args.rounds} rounds (median), {os.cpu_count()} cores, "
        f"bf16 in hardware: {bf16_in_hardware()}"
    )
    for backend, runs in seconds.items():
        median = statistics.median(runs)
        cosines = (vectors[backend] * vectors["torch"]).sum(axis=1)
        print(
            f"{backend:<11} {len(sample) / median:7.1f} texts/s  {torch_s / median:4.2f} x torch  "
            f"cosine to torch: min {cosines.min():.6f}, mean {cosines.mean():.6f}"
        )


if __name__ == "__main__":
    main()

"""Ingest benchmark: throughput, peak memory, overhead over the model alone, and a rerun.

    python bench/ingest.py CORPUS_DIR            # e.g. ../shared/data/pdfs
    python bench/ingest.py --generate 200        # a generated corpus of PDFs and Markdown

Prints files, pages, chunks; files/s, pages/s, chunks/s; peak RSS; the ratio of ingest wall time
to the time the model alone takes to embed the same chunks (target <= 1.25); and the time of a
second, unchanged run as a share of the first (target < 5%).
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

WORDS = [
    *"pump valve boiler pressure gasket filter descale reservoir thermostat sensor".split(),
    *"warranty invoice revenue margin forecast budget audit ledger quarter policy".split(),
    *"harbour tide vessel anchor engine propeller hull rudder cargo crane schedule".split(),
]


def generate(root: Path, n: int) -> None:
    from fpdf import FPDF

    rng = random.Random(7)
    for i in range(n):
        paragraphs = [
            " ".join(rng.choice(WORDS) for _ in range(rng.randint(60, 160))).capitalize() + "."
            for _ in range(rng.randint(3, 12))
        ]
        if i % 2:
            (root / f"note-{i:04d}.md").write_text(f"# Note {i}\n\n" + "\n\n".join(paragraphs))
            continue
        pdf = FPDF()
        pdf.set_font("Helvetica", size=11)
        for paragraph in paragraphs:
            pdf.add_page()
            pdf.multi_cell(0, 6, paragraph)
        pdf.output(str(root / f"report-{i:04d}.pdf"))


def peak_rss_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", nargs="?", type=Path)
    parser.add_argument("--generate", type=int, default=0, metavar="N")
    args = parser.parse_args()
    if not args.corpus and not args.generate:
        parser.error("give CORPUS_DIR or --generate N")

    from ingest import ingest_paths
    from kb.service import open_kb
    from kb.settings import Settings

    with tempfile.TemporaryDirectory() as tmp:
        corpus = args.corpus
        if args.generate:
            corpus = Path(tmp) / "corpus"
            corpus.mkdir()
            generate(corpus, args.generate)
        kb = open_kb(Settings(data_dir=Path(tmp) / "kb"))
        kb.embedder.embed(["warm up"])

        first = ingest_paths(kb, [corpus])
        second = ingest_paths(kb, [corpus])
        texts = [c.text for c in kb.index.iter_chunks()]
        started = time.perf_counter()
        kb.embedder.embed(texts)
        model_alone = time.perf_counter() - started

        files = len(first.results)
        pages = sum(r.pages for r in first.results)
        chunks = first.embedded_chunks
        wall = first.seconds
        print(f"corpus: {corpus if args.corpus else f'{args.generate} generated files'}")
        print(f"statuses: {first.counts}")
        print(f"files {files}, pages {pages}, chunks {chunks}")
        print(
            f"first run: {wall:.2f}s = {files / wall:.1f} files/s, {pages / wall:.1f} pages/s, "
            f"{chunks / wall:.1f} chunks/s"
        )
        print(
            f"model alone on the same {len(texts)} chunks: {model_alone:.2f}s; "
            f"ingest / model = {wall / model_alone:.2f} (target <= 1.25)"
        )
        print(
            f"second, unchanged run: {second.seconds:.2f}s = {second.seconds / wall:.1%} of "
            f"the first (target < 5%); statuses {second.counts}"
        )
        print(f"peak RSS: {peak_rss_mb():.0f} MB")
        kb.close()


if __name__ == "__main__":
    main()

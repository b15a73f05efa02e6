"""Ingest benchmark: throughput, peak memory, overhead over the model alone, and a rerun.

    python bench/ingest.py CORPUS_DIR            # e.g. ../shared/data/pdfs
    python bench/ingest.py --generate 200        # a generated corpus of PDFs and Markdown
    python bench/ingest.py CORPUS_DIR --backend torch --json out.json

Prints files, pages, chunks; files/s, pages/s, chunks/s; peak RSS; the ratio of ingest wall time
to the time the model alone takes to embed the same texts (each chunk with its context, as
ingest embeds it) on the same backend (target <= 1.15); and the time of a second, unchanged run
as a share of the first (target <= 2%). To see where the time goes, run it under py-spy:
`py-spy record --subprocesses -r 50 -o ingest.svg -- python bench/ingest.py CORPUS_DIR`.
"""

from __future__ import annotations

import argparse
import json
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


def peak_rss_mb(who: int | None = None) -> float:
    """The peak RSS of this process (`resource.RUSAGE_SELF`), of its largest child
    (`RUSAGE_CHILDREN`: the extraction process), or of the larger of the two."""
    if who is not None:
        return resource.getrusage(who).ru_maxrss / 1024
    return max(peak_rss_mb(resource.RUSAGE_SELF), peak_rss_mb(resource.RUSAGE_CHILDREN))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", nargs="?", type=Path)
    parser.add_argument("--generate", type=int, default=0, metavar="N")
    parser.add_argument("--backend", choices=("torch", "onnx", "onnx-int8"), help="queries")
    parser.add_argument(
        "--ingest-backend", choices=("auto", "torch", "torch-bf16", "onnx", "onnx-int8")
    )
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the figures here")
    args = parser.parse_args()
    if not args.corpus and not args.generate:
        parser.error("give CORPUS_DIR or --generate N")

    from ingest import ingest_paths
    from kb.service import document_backend, open_kb, shared_embedder
    from kb.settings import Settings

    with tempfile.TemporaryDirectory() as tmp:
        corpus = args.corpus
        if args.generate:
            corpus = Path(tmp) / "corpus"
            corpus.mkdir()
            generate(corpus, args.generate)
        settings = Settings.from_env().replace(data_dir=Path(tmp) / "kb", chroma_url=None)
        if args.backend:
            settings = settings.replace(embed_backend=args.backend)
        if args.ingest_backend:
            settings = settings.replace(ingest_backend=args.ingest_backend)
        started = time.perf_counter()
        # as `kb ingest` opens it: the documents' model alone
        kb = open_kb(settings, embedder=shared_embedder(settings, document_backend(settings)))
        kb.embedder.embed(["warm up"])
        load = time.perf_counter() - started

        first = ingest_paths(kb, [corpus])
        second = ingest_paths(kb, [corpus])
        texts = [c.indexed_text for c in kb.index.iter_chunks()]
        started = time.perf_counter()
        kb.embedder.embed(texts)
        model_alone = time.perf_counter() - started

        files = len(first.results)
        pages = sum(r.pages for r in first.results)
        chunks = first.embedded_chunks
        wall = first.seconds
        print(f"corpus: {corpus if args.corpus else f'{args.generate} generated files'}")
        print(f"backend: {kb.embedder.backend}; model loaded in {load:.2f}s (not counted)")
        print(f"statuses: {first.counts}")
        print(f"files {files}, pages {pages}, chunks {chunks}")
        print(
            f"first run: {wall:.2f}s = {files / wall:.1f} files/s, {pages / wall:.1f} pages/s, "
            f"{chunks / wall:.1f} chunks/s"
        )
        print(
            f"model alone on the same {len(texts)} chunks: {model_alone:.2f}s; "
            f"ingest / model = {wall / model_alone:.2f} (target <= 1.15)"
        )
        print(
            f"second, unchanged run: {second.seconds:.2f}s = {second.seconds / wall:.1%} of "
            f"the first (target <= 2%); statuses {second.counts}"
        )
        print(
            f"peak RSS: {peak_rss_mb():.0f} MB (kb {peak_rss_mb(resource.RUSAGE_SELF):.0f} MB, "
            f"extraction {peak_rss_mb(resource.RUSAGE_CHILDREN):.0f} MB)"
        )
        if args.json:
            figures = {
                "tool": "kb",
                "backend": kb.embedder.backend,
                "files": files,
                "pages": pages,
                "chunks": chunks,
                "seconds": round(wall, 3),
                "pages_per_s": round(pages / wall, 3),
                "chunks_per_s": round(chunks / wall, 3),
                "embed_floor_s": round(model_alone, 3),
                "ratio_to_floor": round(wall / model_alone, 3),
                "rerun_s": round(second.seconds, 3),
                "rerun_fraction": round(second.seconds / wall, 4),
                "peak_rss_mb": round(peak_rss_mb(), 1),
                "statuses": first.counts,
            }
            args.json.write_text(json.dumps(figures, indent=2) + "\n")
        kb.close()


if __name__ == "__main__":
    main()

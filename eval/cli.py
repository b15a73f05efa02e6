"""`kb eval DATASET_DIR`: retrieval quality and latency of each search mode on a dataset."""

from __future__ import annotations

import argparse
from typing import Any

from kb.errors import InvalidInput
from kb.types import SEARCH_MODES

MODE_CHOICES = (*SEARCH_MODES, "all")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="measure retrieval (nDCG, recall, MRR, latency) on a BEIR-style dataset",
        description=(
            "Ingest a dataset's corpus into its own knowledge base under KB_DATA_DIR/eval "
            "(reused by later runs), run its queries through each search mode and score them "
            "against the qrels. DATASET_DIR holds corpus.jsonl, queries.jsonl and qrels "
            "(BEIR layout), or a corpus/ folder of files whose relative paths are the ids."
        ),
    )
    parser.add_argument("dataset", metavar="DATASET_DIR", help="the dataset folder")
    parser.add_argument("--split", default="test", help="qrels split (default: test)")
    parser.add_argument("--mode", choices=MODE_CHOICES, default="all", help="default: all")
    parser.add_argument("--k", default="10,100", help="cut-offs, comma-separated (default 10,100)")
    parser.add_argument("--json", action="store_true", help="print JSON, per-query results too")
    parser.add_argument("--limit-queries", type=int, metavar="N", help="only the first N queries")
    parser.add_argument(
        "--chunk-tokens",
        type=int,
        metavar="N",
        help="chunk size of the eval knowledge base (default: the model's input length)",
    )
    parser.add_argument(
        "--truncate",
        action="store_true",
        help="cut each corpus record to what the model reads (its first 254 tokens), as the "
        "published MTEB figures do; by default whole records are chunked and searched",
    )
    parser.set_defaults(func=handle)


def parse_ks(raw: str) -> tuple[int, ...]:
    try:
        ks = tuple(sorted({int(part) for part in raw.split(",") if part.strip()}))
    except ValueError:
        raise InvalidInput(f"--k {raw!r}: expected integers such as 10,100") from None
    if not ks or ks[0] < 1:
        raise InvalidInput(f"--k {raw!r}: every cut-off must be a positive integer")
    return ks


def handle(args: argparse.Namespace) -> int:
    from eval.datasets import load_dataset
    from eval.harness import run_eval
    from kb.cli import ProgressBar, print_json
    from kb.service import load_embedder
    from kb.settings import Settings

    ks = parse_ks(args.k)
    if args.limit_queries is not None and args.limit_queries < 1:
        raise InvalidInput("--limit-queries must be at least 1")
    if args.chunk_tokens is not None and args.chunk_tokens < 1:
        raise InvalidInput("--chunk-tokens must be at least 1")
    dataset = load_dataset(args.dataset, args.split)
    settings = Settings.from_env()
    embedder = load_embedder(settings)
    modes = SEARCH_MODES if args.mode == "all" else (args.mode,)
    bar = ProgressBar(quiet_when_piped=False)
    try:
        report = run_eval(
            dataset,
            settings,
            embedder,
            modes=modes,
            ks=ks,
            limit_queries=args.limit_queries,
            chunk_tokens=args.chunk_tokens,
            truncate=args.truncate,
            progress=bar.update,
            on_start=bar.start,
        )
    finally:
        bar.close()
    if args.json:
        print_json(_as_json(report))
    else:
        _print_report(report, ks)
    return 0


def _print_report(report: Any, ks: tuple[int, ...]) -> None:
    from kb.cli import print_table, summarize

    first = ks[0]
    headers = ["mode", f"nDCG@{first}", *(f"Recall@{k}" for k in ks), f"MRR@{first}"]
    headers += ["p50 ms", "p95 ms"]
    rows = []
    for result in report.modes:
        m = result.metrics
        rows.append(
            [
                result.mode,
                f"{m[f'ndcg@{first}']:.4f}",
                *(f"{m[f'recall@{k}']:.4f}" for k in ks),
                f"{m[f'mrr@{first}']:.4f}",
                f"{result.p50_ms:.1f}",
                f"{result.p95_ms:.1f}",
            ]
        )
    print(
        f"{report.dataset} ({report.split}): {report.queries} queries, "
        f"{report.documents} documents; ingest: {summarize(report.ingest)} in "
        f"{report.ingest_seconds}s"
    )
    print_table(headers, rows)


def _as_json(report: Any) -> dict[str, Any]:
    return {
        "dataset": report.dataset,
        "split": report.split,
        "queries": report.queries,
        "documents": report.documents,
        "data_dir": report.data_dir,
        "ingest": report.ingest,
        "ingest_seconds": report.ingest_seconds,
        "modes": {
            r.mode: {
                "metrics": r.metrics,
                "p50_ms": round(r.p50_ms, 2),
                "p95_ms": round(r.p95_ms, 2),
                "per_query": {
                    qid: {
                        **values,
                        "ranking": r.rankings.get(qid, [])[:10],
                        "ms": round(r.latency_ms[qid], 2),
                    }
                    for qid, values in r.per_query.items()
                },
            }
            for r in report.modes
        },
    }

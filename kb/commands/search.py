"""`kb search QUERY [-k N] [--mode M] [--json]`: documents ranked, with their best chunks."""

from __future__ import annotations

import argparse
from typing import Any

from kb import cli as kb_cli
from kb.cli import print_json
from kb.types import SEARCH_MODES


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "search", help="rank documents for a query", description="Rank documents for a query."
    )
    parser.add_argument("query")
    parser.add_argument(
        "-k", type=int, default=None, help="number of documents (default: KB_SEARCH_K, 5)"
    )
    parser.add_argument(
        "--mode",
        choices=SEARCH_MODES,
        default=None,
        help="dense (embeddings), bm25 (words) or hybrid (both; default: KB_SEARCH_MODE)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    kb_cli.add_kb_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    with kb_cli.open_kb_from_env(args.kb) as kb:
        hits = kb.search(args.query, k=args.k, mode=args.mode)
        empty = not hits and kb.index.count() == 0
    if args.json:
        print_json(
            [
                {
                    "id": h.document.id,
                    "title": h.document.title,
                    "source": h.document.source,
                    "score": round(h.score, 4),
                    "chunks": [
                        {
                            "text": c.chunk.text,
                            "page_start": c.chunk.page_start,
                            "page_end": c.chunk.page_end,
                            "score": round(c.score, 4),
                        }
                        for c in h.chunks
                    ],
                }
                for h in hits
            ]
        )
        return 0
    if empty:
        print("the knowledge base is empty: add files with `kb ingest PATH`")
    elif not hits:
        print("no documents match")
    for rank, hit in enumerate(hits, 1):
        doc = hit.document
        print(f"{rank}. {doc.title}  [{hit.score:.3f}]  {doc.source}  ({doc.id[:12]})")
        for c in hit.chunks:
            pages = _pages(c.chunk.page_start, c.chunk.page_end)
            text = " ".join(c.chunk.text.split())
            print(f"   {pages}: {text[:200]}{'…' if len(text) > 200 else ''}")
    return 0


def _pages(start: int, end: int) -> str:
    return f"p. {start}" if start == end else f"pp. {start}-{end}"

"""`kb ingest PATH... [--prune] [--json]`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from kb import cli as kb_cli
from kb.cli import ProgressBar, print_json, print_table, summarize


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "ingest",
        help="add files and folders to the knowledge base",
        description="Ingest files and folders: unchanged files are skipped, changed ones "
        "replaced. Exit 0 when nothing failed, 1 when some file failed, 2 on usage errors.",
    )
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    parser.add_argument(
        "--prune", action="store_true", help="remove documents that vanished from these folders"
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    kb_cli.add_kb_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ingest import ingest_paths
    from kb.errors import InvalidInput

    missing = [str(p) for p in args.paths if not p.exists()]
    if missing:  # before the model loads
        raise InvalidInput(f"no such file or directory: {', '.join(missing)}")
    bar = ProgressBar()
    with kb_cli.open_kb_from_env(args.kb, ingest_only=True) as kb:
        try:
            report = ingest_paths(
                kb, args.paths, prune=args.prune, progress=bar.update, on_start=bar.start
            )
        finally:
            bar.close()
    if args.json:
        print_json(
            {
                "results": report.results,
                "counts": report.counts,
                "failed": report.failed,
                "seconds": round(report.seconds, 3),
            }
        )
    else:
        if report.results:
            rows = [(r.label, r.pages, r.chunks, r.path) for r in report.results]
            print_table(("status", "pages", "chunks", "file"), rows)
            print()
        print(summary_line(len(report.results), report.seconds, report.counts))
    return 1 if report.failed else 0


def summary_line(files: int, seconds: float, counts: dict[str, int]) -> str:
    """`5 files in 4.4s: 4 added, 1 failed`, or a hint when there was nothing to ingest."""
    if not files:
        return "no files found under the given paths"
    noun = "file" if files == 1 else "files"
    return f"{files} {noun} in {seconds:.1f}s: {summarize(counts)}"

"""`kb docs list|show|rm`: the documents in the knowledge base."""

from __future__ import annotations

import argparse
from typing import Any

from kb import cli as kb_cli
from kb.cli import print_json, print_table
from kb.errors import InvalidInput, NotFound
from kb.types import Document


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser("docs", help="list, show or remove documents")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    listing = verbs.add_parser("list", help="list documents")
    listing.add_argument("--source-prefix", default=None, help="only sources starting with this")
    listing.add_argument("--kind", choices=("pdf", "text", "image"), default=None)
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=run_list)
    show = verbs.add_parser("show", help="show one document (id or unique id prefix)")
    show.add_argument("id")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=run_show)
    rm = verbs.add_parser("rm", help="remove documents: chunks, record and stored files")
    rm.add_argument("ids", nargs="+", metavar="ID")
    rm.set_defaults(func=run_rm)


def resolve(kb: Any, prefix: str) -> Document:
    """A document by full id or unique prefix (at least 6 characters)."""
    if len(prefix) < 6:
        raise InvalidInput(f"document id {prefix!r} is too short: give at least 6 characters")
    doc = kb.index.get(prefix)
    if doc is not None:
        return doc
    matches = [d for d in kb.index.documents() if d.id.startswith(prefix)]
    if len(matches) > 1:
        raise InvalidInput(f"document id {prefix!r} is ambiguous ({len(matches)} match)")
    if not matches:
        raise NotFound(f"no document {prefix}")
    return matches[0]


def run_list(args: argparse.Namespace) -> int:
    kb = kb_cli.open_kb_from_env()
    try:
        docs = kb.index.documents(source_prefix=args.source_prefix, kind=args.kind)
    finally:
        kb.close()
    if args.json:
        print_json(docs)
        return 0
    rows = [(d.id[:12], d.kind, d.page_count, d.chunk_count, d.title[:40], d.source) for d in docs]
    print_table(("id", "kind", "pages", "chunks", "title", "source"), rows)
    print(f"\n{len(docs)} documents")
    return 0


def run_show(args: argparse.Namespace) -> int:
    kb = kb_cli.open_kb_from_env()
    try:
        doc = resolve(kb, args.id)
    finally:
        kb.close()
    if args.json:
        print_json(doc)
        return 0
    print(
        f"{doc.title}\n  id: {doc.id}\n  kind: {doc.kind} ({doc.mime_type}), "
        f"{doc.size_bytes:,} bytes, {doc.page_count} pages, {doc.chunk_count} chunks"
    )
    for source in doc.sources:
        print(f"  source: {source}")
    for f in doc.files:
        print(f"  file: {f.file_id} ({doc.file_store}) pages {f.page_start}-{f.page_end}")
    for note in doc.notes:
        print(f"  note: {note}")
    print(f"  ingested: {doc.created_at} with {doc.embedding_model}")
    return 0


def run_rm(args: argparse.Namespace) -> int:
    kb = kb_cli.open_kb_from_env()
    try:
        for prefix in args.ids:
            doc = kb.remove(resolve(kb, prefix).id)
            print(f"removed {doc.id[:12]} {doc.source}")
    finally:
        kb.close()
    return 0

"""`kb docs list|show|rm`: the documents in the knowledge base."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from kb import cli as kb_cli
from kb.cli import print_json, print_table
from kb.errors import InvalidInput, NotFound
from kb.types import Document

if TYPE_CHECKING:
    from kb.service import KnowledgeBase


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "docs",
        help="list, show or remove documents",
        description="List, show or remove documents. IDs may be shortened to a unique prefix "
        "of at least 6 characters, as `kb docs list` shows them.",
    )
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    listing = verbs.add_parser("list", help="list documents")
    listing.add_argument("--source-prefix", default=None, help="only sources starting with this")
    listing.add_argument("--kind", choices=("pdf", "text", "image"), default=None)
    listing.add_argument("--json", action="store_true")
    kb_cli.add_kb_option(listing)
    listing.set_defaults(func=run_list)
    show = verbs.add_parser("show", help="show one document (id or unique id prefix)")
    show.add_argument("id")
    show.add_argument("--json", action="store_true")
    kb_cli.add_kb_option(show)
    show.set_defaults(func=run_show)
    rm = verbs.add_parser(
        "rm",
        help="remove documents: chunks, record and stored files",
        description="Remove documents: their chunks, record and stored files. Every ID is "
        "checked first, so a mistyped one removes nothing.",
    )
    rm.add_argument("ids", nargs="+", metavar="ID")
    rm.add_argument("--json", action="store_true", help="print the removed documents as JSON")
    kb_cli.add_kb_option(rm)
    rm.set_defaults(func=run_rm)


def resolve(kb: KnowledgeBase, prefix: str) -> Document:
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
        raise NotFound(f"no document {prefix}: `kb docs list` shows the ids")
    return matches[0]


def run_list(args: argparse.Namespace) -> int:
    with kb_cli.open_kb_from_env(args.kb) as kb:
        docs = kb.index.documents(source_prefix=args.source_prefix, kind=args.kind)
    if args.json:
        print_json(docs)
        return 0
    if not docs:
        filtered = args.source_prefix is not None or args.kind is not None
        print(
            "no documents match" if filtered else "no documents yet: add some with `kb ingest PATH`"
        )
        return 0
    rows = [
        (d.id[:12], d.kind, d.page_count, d.chunk_count, shorten(d.title, 40), d.source)
        for d in docs
    ]
    print_table(("id", "kind", "pages", "chunks", "title", "source"), rows)
    print(f"\n{plural(len(docs), 'document')}")
    return 0


def shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def run_show(args: argparse.Namespace) -> int:
    with kb_cli.open_kb_from_env(args.kb) as kb:
        doc = resolve(kb, args.id)
    if args.json:
        print_json(doc)
        return 0
    print(
        f"{doc.title}\n  id: {doc.id}\n  kind: {doc.kind} ({doc.mime_type}), "
        f"{doc.size_bytes:,} bytes, {plural(doc.page_count, 'page')}, "
        f"{plural(doc.chunk_count, 'chunk')}"
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
    with kb_cli.open_kb_from_env(args.kb) as kb:
        ids = list(dict.fromkeys(resolve(kb, prefix).id for prefix in args.ids))
        removed = [kb.remove(doc_id) for doc_id in ids]
    if args.json:
        print_json(removed)
        return 0
    for doc in removed:
        print(f"removed {doc.id[:12]} {doc.source}")
    return 0

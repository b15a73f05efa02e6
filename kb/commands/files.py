"""`kb files list | gc [--dry-run] | sync`: the originals in the configured file store."""

from __future__ import annotations

import argparse
from typing import Any

from kb import cli as kb_cli
from kb.cli import print_json, print_table, to_jsonable
from kb.files import owns


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "files", help="manage uploaded originals", description="Manage uploaded originals."
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="this knowledge base's files in the store")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=run_list)
    gc = actions.add_parser(
        "gc",
        help="delete this knowledge base's stored files that no document references",
        description="Delete this knowledge base's stored files that no document references. "
        "Files named before knowledge-base ids are never deleted: another install may use them.",
    )
    gc.add_argument("--dry-run", action="store_true", help="only show what would be deleted")
    gc.add_argument("--json", action="store_true", help="print the files as JSON")
    gc.set_defaults(func=run_gc)
    sync = actions.add_parser(
        "sync",
        help="upload originals missing from the current store; move long PDFs to page windows",
    )
    sync.add_argument("--json", action="store_true", help="print the uploaded documents as JSON")
    sync.set_defaults(func=run_sync)


def run_list(args: argparse.Namespace) -> int:
    with kb_cli.open_kb_from_env() as kb:
        stored = list(kb.files.list())
        used = kb.referenced_files()
        old = {
            s.file_id for s in stored if not owns(kb.settings.kb_name, kb.index.kb_id, s.filename)
        }
    if args.json:
        print_json(
            [
                {**to_jsonable(s), "referenced": s.file_id in used, "old_name": s.file_id in old}
                for s in stored
            ]
        )
        return 0
    rows = [
        (
            s.file_id,
            s.filename,
            s.mime_type,
            s.size_bytes,
            ("yes" if s.file_id in used else "no") + (" (old name)" if s.file_id in old else ""),
        )
        for s in stored
    ]
    print_table(("FILE ID", "NAME", "TYPE", "BYTES", "USED"), rows)
    print(f"{len(stored)} file(s) in the {kb.files.name} store")
    if old:
        print(
            f"{len(old)} named before knowledge-base ids: any install named "
            f"{kb.settings.kb_name!r} may have made them"
        )
    return 0


def run_gc(args: argparse.Namespace) -> int:
    with kb_cli.open_kb_from_env() as kb:
        orphans = kb.collect_garbage(dry_run=args.dry_run)
    if args.json:
        print_json(orphans)
        return 0
    verb = "would delete" if args.dry_run else "deleted"
    for s in orphans:
        print(f"{verb} {s.file_id}  {s.filename}")
    print(f"{verb} {len(orphans)} unreferenced file(s)")
    return 0


def run_sync(args: argparse.Namespace) -> int:
    with kb_cli.open_kb_from_env() as kb:
        done = kb.sync()
    if args.json:
        print_json(done)
        return 0
    for doc in done:
        print(f"uploaded {doc.title} ({doc.id[:12]}): {len(doc.files)} file(s)")
    print(f"{len(done)} document(s) uploaded to the {kb.files.name} store")
    return 0

"""`kb files list | gc [--dry-run] | sync`: the originals in the configured file store."""

from __future__ import annotations

import argparse
from typing import Any

from kb import cli as kb_cli
from kb.cli import print_json, print_table, to_jsonable


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "files", help="manage uploaded originals", description="Manage uploaded originals."
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="files in the store under kb's prefix")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=run_list)
    gc = actions.add_parser("gc", help="delete stored files that no document references")
    gc.add_argument("--dry-run", action="store_true", help="only show what would be deleted")
    gc.add_argument("--json", action="store_true", help="print the files as JSON")
    gc.set_defaults(func=run_gc)
    sync = actions.add_parser(
        "sync",
        help="upload originals missing from the current store; move long PDFs to page windows",
    )
    sync.add_argument("--json", action="store_true", help="print the uploaded documents as JSON")
    sync.set_defaults(func=run_sync)


def referenced_ids(kb: Any) -> set[str]:
    return {f.file_id for doc in kb.index.documents() for f in doc.files}


def run_list(args: argparse.Namespace) -> int:
    kb = kb_cli.open_kb_from_env()
    try:
        stored = list(kb.files.list())
        used = referenced_ids(kb)
    finally:
        kb.close()
    if args.json:
        print_json([{**to_jsonable(s), "referenced": s.file_id in used} for s in stored])
        return 0
    rows = [
        (s.file_id, s.filename, s.mime_type, s.size_bytes, "yes" if s.file_id in used else "no")
        for s in stored
    ]
    print_table(("FILE ID", "NAME", "TYPE", "BYTES", "USED"), rows)
    print(f"{len(stored)} file(s) in the {kb.files.name} store")
    return 0


def run_gc(args: argparse.Namespace) -> int:
    kb = kb_cli.open_kb_from_env()
    try:
        orphans = collect_garbage(kb, dry_run=args.dry_run)
    finally:
        kb.close()
    if args.json:
        print_json(orphans)
        return 0
    verb = "would delete" if args.dry_run else "deleted"
    for s in orphans:
        print(f"{verb} {s.file_id}  {s.filename}")
    print(f"{verb} {len(orphans)} unreferenced file(s)")
    return 0


def collect_garbage(kb: Any, *, dry_run: bool = False) -> list[Any]:
    """Files under kb's prefix that no committed document references; deleted unless dry."""
    used = referenced_ids(kb)
    orphans = [s for s in kb.files.list() if s.file_id not in used]
    if not dry_run:
        for s in orphans:
            kb.files.delete(s.file_id)
    return orphans


def sync_documents(kb: Any) -> list[Any]:
    """Upload every document whose files are not in the current store, and move PDFs stored
    in parts longer than a page window to windows (their old files are deleted); return them."""
    from kb.uploads import move_to_windows, needs_windows, upload_document

    done = []
    for doc in kb.index.documents():
        if needs_windows(doc, kb.settings):
            done.append(move_to_windows(kb, doc))
            continue
        if doc.file_store == kb.files.name and len(doc.files) == len(doc.parts):
            continue
        new_doc = upload_document(kb.files, kb.blobs, doc)
        kb.index.commit(new_doc)
        done.append(new_doc)
    return done


def run_sync(args: argparse.Namespace) -> int:
    kb = kb_cli.open_kb_from_env()
    try:
        done = sync_documents(kb)
    finally:
        kb.close()
    if args.json:
        print_json(done)
        return 0
    for doc in done:
        print(f"uploaded {doc.title} ({doc.id[:12]}): {len(doc.files)} file(s)")
    print(f"{len(done)} document(s) uploaded to the {kb.files.name} store")
    return 0

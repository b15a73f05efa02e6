"""`kb files list | gc [--dry-run] | sync`: the originals in the configured file store."""

from __future__ import annotations

import argparse
import time
from typing import Any

from kb import cli as kb_cli
from kb.cli import print_json, print_table, to_jsonable
from kb.files import StoredFile, age_seconds, owns


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "files", help="manage uploaded originals", description="Manage uploaded originals."
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="this knowledge base's files in the store")
    listing.add_argument("--json", action="store_true")
    kb_cli.add_kb_option(listing)
    listing.set_defaults(func=run_list)
    gc = actions.add_parser(
        "gc",
        help="delete stored files no document references, and unused local copies",
        description="Delete this knowledge base's stored files that no document references, and "
        "local copies of originals that no document uses, once older than KB_GC_GRACE_SECONDS "
        "(an ingest stores files before it commits their record). Files named before "
        "knowledge-base ids are never deleted: another install may use them.",
    )
    gc.add_argument("--dry-run", action="store_true", help="only show what would be deleted")
    gc.add_argument("--json", action="store_true", help="print the files as JSON")
    kb_cli.add_kb_option(gc)
    gc.set_defaults(func=run_gc)
    sync = actions.add_parser(
        "sync",
        help="upload originals missing from the current store; move long PDFs to page windows",
    )
    sync.add_argument("--json", action="store_true", help="print the uploaded documents as JSON")
    kb_cli.add_kb_option(sync)
    sync.set_defaults(func=run_sync)


def run_list(args: argparse.Namespace) -> int:
    with kb_cli.open_kb_from_env(args.kb) as kb:
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
    with kb_cli.open_kb_from_env(args.kb) as kb:
        found = kb.collect_garbage(dry_run=args.dry_run)
        copies = kb.collect_copies(dry_run=args.dry_run)
        kb_name = kb.settings.kb_name
    if args.json:
        print_json({**to_jsonable(found), "copies": copies})
        return 0
    verb = "would delete" if args.dry_run else "deleted"
    now = time.time()
    for s in found.deleted:
        print(f"{verb} {s.file_id}  {s.filename}")
    grace = _duration(found.grace_seconds)
    for s in found.too_new:
        print(
            f"skipped {s.file_id}  {s.filename}  ({_age(s, now)}, under the {grace} grace period)"
        )
    for s in found.old_names:
        print(f"skipped {s.file_id}  {s.filename}  (named before knowledge-base ids)")
    print(f"{verb} {len(found.deleted)} unreferenced file(s)")
    if found.too_new:
        print(
            f"skipped {len(found.too_new)} unreferenced file(s) younger than "
            f"KB_GC_GRACE_SECONDS ({grace}): an ingest may not have committed them yet"
        )
    if found.old_names:
        print(
            f"skipped {len(found.old_names)} unreferenced file(s) named before knowledge-base "
            f"ids: any install named {kb_name!r} may have made them, so kb never deletes them"
        )
    for name in found.leftovers:
        print(f"{verb} leftover {name}  (of a write cut short)")
    if found.leftovers:
        print(f"{verb} {len(found.leftovers)} leftover(s) of interrupted writes")
    for doc_id in copies:
        print(f"{verb} local copy {doc_id}")
    if copies:
        print(f"{verb} {len(copies)} unused local {'copy' if len(copies) == 1 else 'copies'}")
    return 0


def _age(stored: StoredFile, now: float) -> str:
    age = age_seconds(stored, now)
    return "age unknown" if age is None else f"{_duration(max(age, 0))} old"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def run_sync(args: argparse.Namespace) -> int:
    with kb_cli.open_kb_from_env(args.kb) as kb:
        done = kb.sync()
    if args.json:
        print_json(done)
        return 0
    for doc in done:
        print(f"uploaded {doc.title} ({doc.id[:12]}): {len(doc.files)} file(s)")
    print(f"{len(done)} document(s) uploaded to the {kb.files.name} store")
    return 0

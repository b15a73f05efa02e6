"""`kb ask --batch QUESTIONS.jsonl [--out ANSWERS.jsonl]` and `kb batches list|show|cancel`.

The answers are JSON lines (one per question, in the order they arrive) on stdout or in the
`--out` file; progress goes to stderr. Run again with the same questions, kb takes up the job
where it stopped (see `kb.batches`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import IO, Any

from kb import cli as kb_cli
from kb.batch_jobs import Job, parse_questions
from kb.batches import Progress
from kb.errors import InvalidInput


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "batches",
        help="bulk-question jobs (`kb ask --batch`)",
        description="The bulk-question jobs of this knowledge base and their Message Batches.",
    )
    commands = parser.add_subparsers(dest="batches_command", metavar="COMMAND", required=True)
    listing = commands.add_parser("list", help="every job: questions, answers, status")
    listing.set_defaults(func=run_list)
    show = commands.add_parser("show", help="a job's status and batches (looks at them now)")
    show.add_argument("job")
    show.set_defaults(func=run_show)
    cancel = commands.add_parser("cancel", help="cancel a job's running batches")
    cancel.add_argument("job")
    cancel.set_defaults(func=run_cancel)
    for command in (listing, show, cancel):
        kb_cli.add_kb_option(command)


def run_batch(path: str, out: str | None, kb_name: str | None = None) -> int:
    """`kb ask --batch`: every question of the file answered, as JSON lines."""
    from kb.service import check_question

    settings = kb_cli.settings_from_env(kb_name)
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read {path}: {exc}") from None
    questions = parse_questions(lines, lambda text, field: check_question(text, settings, field))
    target: IO[str] = open(out, "w", encoding="utf-8") if out else sys.stdout  # noqa: SIM115
    shown = _Progress()
    errors = 0
    cost = 0.0

    def write(line: dict[str, Any]) -> None:
        nonlocal errors, cost
        errors += line["error"] is not None
        cost += (line.get("usage") or {}).get("cost_usd") or 0.0
        target.write(json.dumps(line, ensure_ascii=False) + "\n")
        target.flush()

    try:
        with kb_cli.open_kb_from_env(kb_name) as kb:
            job = kb.bulk().run(questions, progress=shown, on_line=write)
    finally:
        shown.end()
        if out:
            target.close()
    total = len(job.questions)
    price = f"; ~${cost:.4f} at the batch price" if job.answered_by == "claude" else ""
    print(
        f"{job.id}: {total} question(s), {total - errors} answered, {errors} error(s){price}",
        file=sys.stderr,
    )
    if job.answered_by != "claude":
        print(
            "Note: no model was called (no ANTHROPIC_API_KEY): each answer is the "
            "best-matching passages.",
            file=sys.stderr,
        )
    return 0


class _Progress:
    """One status line on stderr, redrawn in place on a terminal, else written when it changes."""

    def __init__(self) -> None:
        self._last = ""
        self._tty = sys.stderr.isatty()

    def __call__(self, p: Progress) -> None:
        running = [b for b in p.batches if not b.fetched]
        parts = [f"{p.job}: {p.answered}/{p.questions} answered"]
        for b in running:
            counts = ", ".join(f"{n} {k}" for k, n in b.counts.items() if n)
            parts.append(f"{b.id or 'sending'} {b.status}" + (f" ({counts})" if counts else ""))
        text = " · ".join(parts)
        if text == self._last:
            if self._tty:
                sys.stderr.write(f"\r{text} · {p.elapsed:.0f}s")
            return
        self._last = text
        start, end = ("\r", "") if self._tty else ("", "\n")
        sys.stderr.write(f"{start}{text} · {p.elapsed:.0f}s{end}")
        sys.stderr.flush()

    def end(self) -> None:
        if self._tty and self._last:
            sys.stderr.write("\n")


def _summary(kb: Any, job: Job) -> dict[str, Any]:
    bulk = kb.bulk()
    summary: dict[str, Any] = kb_cli.to_jsonable(bulk.status(job))
    summary["answers"] = str(bulk.store.answers_path(job.id))
    return summary


def run_list(args: argparse.Namespace) -> int:
    with kb_cli.open_kb_from_env(args.kb) as kb:
        rows = []
        for job in kb.bulk().store.jobs():
            s = _summary(kb, job)
            rows.append(
                [
                    s["id"],
                    s["created_at"][:19],
                    s["answered_by"],
                    s["questions"],
                    s["answered"],
                    s["status"],
                    len(s["batches"]),
                ]
            )
    kb_cli.print_table(["job", "created", "by", "questions", "answered", "status", "batches"], rows)
    return 0


def run_show(args: argparse.Namespace) -> int:
    with kb_cli.open_kb_from_env(args.kb) as kb:
        job = kb.bulk().step(args.job)
        kb_cli.print_json(_summary(kb, job))
    return 0


def run_cancel(args: argparse.Namespace) -> int:
    with kb_cli.open_kb_from_env(args.kb) as kb:
        job = kb.bulk().cancel(args.job)
        kb_cli.print_json(_summary(kb, job))
    return 0

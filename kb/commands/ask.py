"""`kb ask QUESTION [--json] [--stream] [-k N]`: an answer with citations to original pages.
`kb ask --batch QUESTIONS.jsonl [--out ANSWERS.jsonl]`: many (`kb.commands.batches`)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from kb import cli as kb_cli
from kb.cli import print_json
from kb.errors import InvalidInput
from kb.types import Answer, AnswerDone, CitationDelta, TextDelta


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "ask",
        help="answer a question from the knowledge base",
        description="Answer a question from the knowledge base, citing pages. Without "
        "ANTHROPIC_API_KEY no model is called: the best passages are shown instead.",
    )
    parser.add_argument("question", nargs="?")
    parser.add_argument(
        "-k", type=int, default=None, help="documents to retrieve (default: KB_SEARCH_K, 5)"
    )
    parser.add_argument("--json", action="store_true", help="print the answer as JSON")
    parser.add_argument("--stream", action="store_true", help="print text as it arrives")
    kb_cli.add_kb_option(parser)
    parser.add_argument(
        "--batch",
        metavar="QUESTIONS",
        help="answer every question of a file (JSON lines {id, question, filters} or plain "
        "text lines) through Message Batches at half price; resumable: run it again to go on",
    )
    parser.add_argument(
        "--out", metavar="ANSWERS", help="with --batch: write the answer lines here (not stdout)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from kb.retrieval import QUESTION_CHUNKS
    from kb.service import check_question

    if args.batch is not None:
        if args.question is not None or args.stream or args.json or args.k is not None:
            raise InvalidInput("--batch takes no question, --json, --stream or -k")
        from kb.commands.batches import run_batch

        return run_batch(args.batch, args.out, args.kb)
    if args.question is None:
        raise InvalidInput("a question is required (or --batch QUESTIONS)")
    if args.out is not None:
        raise InvalidInput("--out goes with --batch")
    question = check_question(args.question, kb_cli.settings_from_env(args.kb))
    with kb_cli.open_kb_from_env(args.kb) as kb:
        hits = kb.search(question, k=args.k, chunks_per_doc=QUESTION_CHUNKS)
        if args.stream and not args.json:
            answer = _stream(kb.stream(question, hits))
        else:
            answer = kb.ask(question, hits)
            if args.json:
                print_json(answer)
                return 0
            if answer.answered_by != "claude":
                _notice(answer, first=True)  # so that passages are never taken for an answer
            print(answer.text)
    _footer(answer)
    if args.stream or answer.answered_by == "claude":
        _notice(answer, first=False)
    return 0


def _notice(answer: Answer, *, first: bool) -> None:
    if answer.notice:
        text = f"Note: {answer.notice}\n" if first else f"\nNote: {answer.notice}"
        print(text, file=sys.stderr, flush=True)


def _stream(events: Any) -> Answer:
    """Print text as it arrives. A stream that fails midway (the answerer raises a KBError)
    still ends its line, so the `kb: ...` error is not glued to partial text."""
    answer = None
    try:
        for event in events:
            if isinstance(event, TextDelta):
                sys.stdout.write(event.text)
                sys.stdout.flush()
            elif isinstance(event, CitationDelta):
                continue
            elif isinstance(event, AnswerDone):
                answer = event.answer
    finally:
        print(flush=True)
    if answer is None:
        from kb.errors import UpstreamError

        raise UpstreamError("the answer stream ended without an answer")
    return answer


def _footer(answer: Answer) -> None:
    if answer.citations:
        print("\nSources:")
        for n, c in enumerate(answer.citations, 1):
            quote = " ".join(c.cited_text.split())
            quote = quote[:160] + ("…" if len(quote) > 160 else "")
            print(f'  [{n}] {c.title}, {c.where} ({c.source}): "{quote}"')
    u = answer.usage
    if answer.answered_by == "claude" and answer.documents:
        estimate = f"~{answer.estimated_input_tokens:,} input tokens estimated"
        if answer.estimated_cost_usd is not None:
            estimate += f", ~${answer.estimated_cost_usd:.4f}"
        print(
            f"\nSent {len(answer.documents)} file(s), {answer.pages_sent} PDF page(s): {estimate}",
            file=sys.stderr,
        )
    if answer.answered_by == "claude" and answer.model:
        cost = f", ~${u.cost_usd:.4f}" if u.cost_usd is not None else ""
        print(
            f"\n{answer.model}: {u.input_tokens} in, {u.output_tokens} out, cache "
            f"{u.cache_read_tokens} read / {u.cache_write_tokens} written{cost}",
            file=sys.stderr,
        )

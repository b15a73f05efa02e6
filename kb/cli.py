"""The `kb` command. Core commands live in `kb/commands/`; stages add theirs through the
`kb.commands` entry-point group, so importing `kb` never imports a stage.

Each command module has `register(subparsers)`, which adds a parser and sets
`func=handler(args) -> int`. Errors from the `kb.errors` tree become `kb: <message>` on stderr
and the class's exit code; nothing else prints a stack trace unless `KB_DEBUG` is set.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from kb.errors import KBError
from kb.types import FileResult

if TYPE_CHECKING:
    from kb.service import KnowledgeBase
    from kb.settings import Settings

CORE_COMMANDS = (
    "kb.commands.search",
    "kb.commands.docs",
    "kb.commands.ask",
    "kb.commands.batches",
    "kb.commands.files",
)


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(
        prog="kb",
        description="Ingest files once; search them; ask Claude with page citations.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in CORE_COMMANDS:
        importlib.import_module(name).register(sub)
    for ep in sorted(entry_points(group="kb.commands"), key=lambda e: e.name):
        ep.load()(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KBError as exc:
        if os.environ.get("KB_DEBUG"):
            raise
        print(f"kb: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("kb: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`kb docs list --json | head`): stop quietly, and point stdout
        # at /dev/null so that the interpreter's final flush does not complain either.
        with contextlib.suppress(OSError, ValueError):  # no descriptor: nothing to flush
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def add_kb_option(parser: argparse.ArgumentParser) -> None:
    """`--kb NAME`: the knowledge base a command works on (`KB_NAME` otherwise)."""
    parser.add_argument(
        "--kb",
        metavar="NAME",
        type=_kb_name,
        default=None,
        help="the knowledge base to work on (default: KB_NAME, else `default`)",
    )


def _kb_name(value: str) -> str:
    from kb.settings import kb_name_problem

    if (problem := kb_name_problem(value)) is not None:
        raise argparse.ArgumentTypeError(f"{value!r} {problem}")
    return value


def settings_from_env(kb_name: str | None = None) -> Settings:
    """Settings from the environment, for the knowledge base `kb_name` when given (`--kb`)."""
    from kb.settings import Settings

    settings = Settings.from_env()
    return settings if kb_name is None else settings.for_kb(kb_name)


def open_kb_from_env(kb_name: str | None = None, *, ingest_only: bool = False) -> KnowledgeBase:
    """Settings from the environment, then the knowledge base (`kb_name`'s when given;
    loads the model). Use it as a context manager: `with kb_cli.open_kb_from_env() as kb:`.
    A command that only ingests (`ingest_only`) loads the documents' model alone
    (`KB_INGEST_BACKEND`), which has the queries' tokenizer and makes their vectors."""
    from kb.service import document_backend, open_kb, shared_embedder

    settings = settings_from_env(kb_name)
    embedder = shared_embedder(settings, document_backend(settings)) if ingest_only else None
    return open_kb(settings, embedder=embedder)


def to_jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    return value


def print_json(value: Any) -> None:
    json.dump(to_jsonable(value), sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[str(c) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    print(line.rstrip())
    for r in cells:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


def summarize(counts: dict[str, int]) -> str:
    """File statuses as `4 added, 1 failed` (alphabetical), or `nothing to do`."""
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "nothing to do"


class ProgressBar:
    """A tqdm bar on stderr over the files of an ingest; `quiet_when_piped` hides it when
    stderr is no terminal."""

    def __init__(self, *, quiet_when_piped: bool = True) -> None:
        self._bar: Any = None
        self._disable = None if quiet_when_piped else False

    def start(self, total: int) -> None:
        from tqdm import tqdm

        self._bar = tqdm(
            total=total, desc="ingest", unit="file", file=sys.stderr, disable=self._disable
        )

    def update(self, result: FileResult) -> None:
        if self._bar is not None and result.status != "removed":  # pruned: not a scanned file
            self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


if __name__ == "__main__":
    sys.exit(main())

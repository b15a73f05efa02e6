"""Contextual chunk headers: the words embedded and indexed with a chunk, never shown.

A chunk from page 63 of a filing reads "Net income ... 629,551 ... Depreciation ...": it names
neither the company, nor the year, nor that it is a cash flow statement. Its context says so:
the document's title and file name (`document_context`), then the heading of the page the chunk
starts on (`page_headings`): the page's first words once running headers ("Table of Contents",
"PART II", the company's name on every page) and page numbers are skipped.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from pathlib import PurePath

from kb.types import Page

CONTEXT_CHARS = 160  # a title and a file name, not a paragraph
HEADING_CHARS = 80  # a heading and its qualifier: "Consolidated Balance Sheets (In millions)"
HEADING_LINES = 8  # where a page's heading is looked for
HEADING_LINE_CHARS = 70  # a longer line is a paragraph's, wrapped
RUNNING_SHARE = 0.2  # a line among the first of this share of pages is a running header
_WORDS = re.compile(r"[^\W_]+")
_DIGITS = re.compile(r"\d+")


def document_context(title: str, source: str) -> str:
    """The title and, when it adds something, the file name's words. Empty when neither holds
    a word (a numeric id), so a corpus of numbered files is indexed as it was."""
    from kb.extraction import filename_words

    name = filename_words(PurePath(source.removeprefix("upload:")).name)
    title = " ".join(title.split())
    if _words(title) == _words(name) and " " not in title:  # a file stem: its words read better
        title = ""
    found = [t for t in (title, name) if sum(ch.isalpha() for ch in t) >= 2]
    if len(found) == 2 and _words(name) in _words(title):
        found = [title]
    return join_context(*found)[:CONTEXT_CHARS]


def page_headings(pages: Sequence[Page]) -> dict[int, str]:
    """Each page's heading: the short lines that open it (a capital or a parenthesis first, at
    most HEADING_LINE_CHARS; not the wrapped line of a paragraph that runs on from the page
    before), once running headers (lines that open many pages, numbers blanked) and lines
    without letters are skipped; up to HEADING_CHARS. A page that opens with prose has none."""
    tops = [_lines(page.text)[:HEADING_LINES] for page in pages]
    opening = Counter(_shape(line) for lines in tops for line in set(lines))
    running = {s for s, n in opening.items() if n >= max(3, RUNNING_SHARE * len(pages))}
    headings: dict[int, str] = {}
    for page, lines in zip(pages, tops, strict=True):
        kept = [ln for ln in lines if _shape(ln) not in running and any(c.isalpha() for c in ln)]
        heading = ""
        for line in kept:
            if len(line) > HEADING_LINE_CHARS or not (line[0].isupper() or line[0] == "("):
                break
            heading = f"{heading} {line}".strip()
            if len(heading) >= HEADING_CHARS // 2:
                break
        if len(heading) > HEADING_CHARS:  # cut at a word
            heading = heading[: HEADING_CHARS + 1].rsplit(" ", 1)[0][:HEADING_CHARS]
        headings[page.number] = heading
    return headings


SEPARATOR = " — "  # between a chunk's document context and its page's heading


def join_context(*parts: str) -> str:
    return SEPARATOR.join(p for p in parts if p)


def _lines(text: str) -> list[str]:
    return [" ".join(line.split()) for line in text.splitlines() if line.strip()]


def _shape(line: str) -> str:
    return _DIGITS.sub("0", line.lower())


def _words(text: str) -> str:
    return " ".join(_WORDS.findall(text.lower()))

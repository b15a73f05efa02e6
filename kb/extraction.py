"""Extraction: the text of one file, page by page, read locally.

`extract(path)` is a top-level function so that ingest can run it in a worker process with a
time limit; its `on_pages` callback hears a PDF's page count before the pages are read, so that
the limit can grow with the file. A file that cannot be read raises `ExtractionError(reason)`
with a short reason (`encrypted`, `empty file`, `malformed PDF: ...`); damage to single pages
becomes a note.

What one file may cost is bounded here, where its text is made: at most `limits.page_chars`
characters of a PDF page and `limits.file_chars` of a file are kept. A page's text stops being
read as soon as it passes its share (a 25 KB PDF can inflate to millions of characters), and
the cut is the document's note (`text cut at 20,000 characters: page 3`), never a failure: the
file is still searchable by what it kept.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kb.errors import ExtractionError
from kb.types import DocKind, Extraction, Page

TEXT_SUFFIXES = frozenset({".txt", ".md", ".markdown", ".text", ".rst"})
IMAGE_SUFFIXES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
}
_GENERIC_TITLES = frozenset({"untitled", "title", "document", "unknown", "none", "null", "pdf"})
_HEADING = re.compile(r"^#[ \t]+(.+?)[ \t#]*$")
_WORD_SEPARATORS = re.compile(r"[\s_\-.]+")
_LEADERS = re.compile(r"([._=*~·…-])\1{2,}")  # leaders: dots, dashes, rules

MAX_PAGE_CHARS = 20_000  # a dense page of a filing holds 3,000 to 10,000
MAX_FILE_CHARS = 3_000_000  # a 500-page filing holds about 2.5 million


@dataclass(frozen=True, slots=True)
class Limits:
    """Characters kept from one PDF page and from one file (`KB_MAX_PAGE_CHARS`,
    `KB_MAX_FILE_CHARS`)."""

    page_chars: int = MAX_PAGE_CHARS
    file_chars: int = MAX_FILE_CHARS


DEFAULT_LIMITS = Limits()


class _Enough(Exception):
    """Raised inside pypdf's text visitor once a page has given all it may keep."""


def sniff_mime(data: bytes) -> str | None:
    """The MIME type that the leading bytes announce, for the types kb reads."""
    if data.startswith(b"%PDF-"):
        return "application/pdf"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def kind_of(path: Path) -> DocKind | None:
    """The kind of document a file holds, or None when kb does not read that type."""
    mime = _sniff_path(path)
    if mime == "application/pdf":
        return "pdf"
    if mime is not None:
        return "image"
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        return "pdf"
    if suffix in TEXT_SUFFIXES:
        return "text"
    if suffix in IMAGE_SUFFIXES:
        return "image"
    return None


def is_sidecar(path: Path) -> bool:
    """True for `chart.png.txt` beside an existing `chart.png`: a description, not a document."""
    if path.suffix.lower() != ".txt":
        return False
    image = path.with_suffix("")
    return image.suffix.lower() in IMAGE_SUFFIXES and image.is_file()


def extract(
    path: Path, on_pages: Callable[[int], None] | None = None, limits: Limits = DEFAULT_LIMITS
) -> Extraction:
    """Read one file. Raises `ExtractionError` for a file that cannot be used.

    For a PDF, `on_pages(n)` is called once with the page count as soon as the page tree has
    been read, before any page's text; text files and images are read at once and never call it.
    Text beyond `limits` is dropped and noted.
    """
    kind = kind_of(path)
    if kind is None:
        raise ExtractionError("unsupported type", f"{path.name}: unsupported file type")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ExtractionError("unreadable", f"{path.name}: {exc.strerror or exc}") from exc
    if not data:
        raise ExtractionError("empty file", f"{path.name} is empty")
    if kind == "pdf":
        return _extract_pdf(data, path.stem, on_pages, limits)
    if kind == "image":
        return _extract_image(path, data)
    return _extract_text(path, data, limits)


def _sniff_path(path: Path) -> str | None:
    try:
        with path.open("rb") as handle:
            return sniff_mime(handle.read(16))
    except OSError:
        return None


def _page_text(page: Any, keep: int) -> tuple[str, bool]:
    """A page's text, at most `keep` characters, and whether more was dropped. pypdf's visitor
    sees the text as it is made, so a page that would inflate to millions of characters stops
    being read once it has given `keep` (what extract_text returns is the same text)."""
    pieces: list[str] = []
    seen = 0

    def count(text: str, *_: Any) -> None:
        nonlocal seen
        pieces.append(text)
        seen += len(text)
        if seen > keep:
            raise _Enough

    try:
        text = page.extract_text(visitor_text=count) or ""
    except _Enough:
        text = "".join(pieces)
    return (text[:keep], True) if len(text) > keep else (text, False)


def _extract_pdf(
    data: bytes,
    stem: str,
    on_pages: Callable[[int], None] | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> Extraction:
    from kb.pdf import open_pdf, short_error

    reader, encrypted = open_pdf(data)
    try:
        count = len(reader.pages)
    except Exception as exc:  # pypdf raises many types for a broken page tree
        raise ExtractionError(f"malformed PDF: {short_error(exc)}") from exc
    if on_pages is not None:
        on_pages(count)
    if count == 0:
        raise ExtractionError("malformed PDF: no pages")
    pages: list[Page] = []
    failed: list[int] = []
    garbled: list[int] = []
    cut: list[int] = []  # pages over the page limit
    dropped: list[int] = []  # pages past the file limit
    left = limits.file_chars
    for number in range(1, count + 1):
        keep = min(limits.page_chars, left)
        over = False
        if keep <= 0:
            text, over = "", True
        else:
            try:
                text, over = _page_text(reader.pages[number - 1], keep)
            except Exception:  # one bad page must not lose the file
                text = ""
                failed.append(number)
        if over:
            (cut if keep == limits.page_chars else dropped).append(number)
        if is_garbled(text):
            text = ""
            garbled.append(number)
        text = text.replace("\x00", "")
        left -= len(text)
        pages.append(Page(number, text))
    notes: list[str] = []
    if failed:
        notes.append(f"text extraction failed: {page_ranges(failed)}")
    if garbled:
        notes.append(f"garbled text skipped: {page_ranges(garbled)}")
    if cut:
        notes.append(f"text cut at {limits.page_chars:,} characters: {page_ranges(cut)}")
    if dropped:
        notes.append(
            f"text beyond {limits.file_chars:,} characters in the file dropped: "
            f"{page_ranges(dropped)}"
        )
    if not failed and not garbled and not any(p.text.strip() for p in pages):
        notes.append("image-only: no text layer")
    return Extraction(
        kind="pdf",
        mime_type="application/pdf",
        title=_pdf_title(reader) or stem,
        pages=tuple(pages),
        page_count=count,
        encrypted=encrypted,
        notes=tuple(notes),
    )


def _pdf_title(reader: Any) -> str | None:
    try:
        metadata = reader.metadata
        return meaningful_title(metadata.title if metadata is not None else None)
    except Exception:  # unreadable metadata is no reason to fail
        return None


def _extract_text(path: Path, data: bytes, limits: Limits = DEFAULT_LIMITS) -> Extraction:
    text = decode_utf8(data, path.name)
    if not text.strip():
        raise ExtractionError("empty file", f"{path.name} holds only whitespace")
    notes: tuple[str, ...] = ()
    if len(text) > limits.file_chars:
        notes = (f"text beyond {limits.file_chars:,} characters dropped (of {len(text):,})",)
        text = text[: limits.file_chars]
    return Extraction(
        kind="text",
        mime_type="text/plain",
        title=markdown_title(text) or path.stem,
        pages=(Page(1, text),),
        page_count=1,
        notes=notes,
    )


def decode_utf8(data: bytes, name: str) -> str:
    """Strict UTF-8 (a leading BOM is dropped); the error names the first bad byte's offset."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        detail = f"invalid byte 0x{data[exc.start]:02x} at offset {exc.start}"
        message = f"{name}: not UTF-8 text, {detail}"
        raise ExtractionError(f"not UTF-8 text: {detail}", message) from None
    nul = text.find("\x00")
    if nul >= 0:
        offset = len(text[:nul].encode("utf-8"))
        detail = f"NUL byte at offset {offset}"
        raise ExtractionError(f"not UTF-8 text: {detail}", f"{name}: binary data, {detail}")
    return text


def markdown_title(text: str) -> str | None:
    """The first level-1 heading outside fenced code: `# Title`, or `Title` over `=====`."""
    fenced = False
    lines = text.splitlines()
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith(("```", "~~~")):
            fenced = not fenced
            continue
        if fenced:
            continue
        match = _HEADING.match(line)
        if match:
            return match.group(1).strip()
        underline = lines[i + 1].strip() if i + 1 < len(lines) else ""
        if stripped and len(underline) >= 3 and set(underline) == {"="}:
            return stripped
    return None


def _extract_image(path: Path, data: bytes) -> Extraction:
    mime = sniff_mime(data)
    if mime is None or mime == "application/pdf":
        raise ExtractionError("malformed image", f"{path.name}: not a PNG, JPEG, GIF or WebP")
    title = filename_words(path.name)
    sidecar = Path(f"{path}.txt")
    text, note = f"{title}\n{path.name}", "image: indexed by filename"
    if sidecar.is_file():
        description = sidecar.read_bytes().decode("utf-8-sig", errors="replace").strip()
        if description:
            text, note = f"{title}\n\n{description}", "image: indexed by filename and sidecar"
    return Extraction(
        kind="image",
        mime_type=mime,
        title=title,
        pages=(Page(1, text),),
        page_count=1,
        notes=(note,),
    )


def filename_words(name: str) -> str:
    """`q3_sales-chart.png` -> `q3 sales chart`."""
    stem = name.rsplit(".", 1)[0] if "." in name.lstrip(".") else name
    return " ".join(w for w in _WORD_SEPARATORS.split(stem) if w) or name


def meaningful_title(raw: Any) -> str | None:
    """A metadata title worth showing: not blank, not generic, not a bare file name."""
    if not isinstance(raw, str):
        return None
    title = " ".join(raw.replace("\x00", "").split())
    title = re.sub(r"^Microsoft (Word|PowerPoint|Excel) - ", "", title)
    if re.search(r"\.(docx?|pdf|pptx?|xlsx?|odt|tex|dvi)$", title, re.IGNORECASE):
        return None
    letters = sum(ch.isalpha() for ch in title)
    if letters < 2 or title.lower() in _GENERIC_TITLES:
        return None
    return title[:300]


def page_ranges(numbers: Iterable[int]) -> str:
    """[3, 4, 5, 9] -> `pages 3-5, 9`; [2] -> `page 2`."""
    ordered = sorted(set(numbers))
    spans: list[str] = []
    start = prev = ordered[0]
    for n in [*ordered[1:], None]:
        if n is not None and n == prev + 1:
            prev = n
            continue
        spans.append(str(start) if start == prev else f"{start}-{prev}")
        if n is not None:
            start = prev = n
    label = "page" if len(ordered) == 1 else "pages"
    return f"{label} {', '.join(spans)}"


def is_garbled(text: str) -> bool:
    """Text that is mostly control, private-use or replacement characters, or hardly letters.
    A run of one leader mark (the dot leaders of a table of contents or a balance sheet,
    "Cash ........ 876,560") counts as one character."""
    visible = [ch for ch in _LEADERS.sub(r"\1", text) if not ch.isspace()]
    if len(visible) < 10:
        return False
    bad = 0
    wordy = 0
    for ch in visible:
        category = unicodedata.category(ch)
        if ch == "\ufffd" or category in ("Cc", "Co", "Cs", "Cn"):
            bad += 1
        elif category[0] in ("L", "N"):
            wordy += 1
    return bad / len(visible) > 0.2 or wordy / len(visible) < 0.3

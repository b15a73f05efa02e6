"""PDF handling with pypdf: opening (empty-password decryption), cutting into page windows.

The Files API takes no encrypted PDFs, and a question should carry the pages around its answer,
not a whole filing, so a long PDF is uploaded as page windows (`Part`s: contiguous page ranges in
the original numbering, each its own file). A PDF of at most one window is one part, uploaded as
the original bytes (or a decrypted copy).
"""

from __future__ import annotations

import io
import logging
import warnings
from typing import TYPE_CHECKING

from kb.errors import ExtractionError, InvalidInput
from kb.types import Part

if TYPE_CHECKING:
    from pypdf import PdfReader, PdfWriter


def open_pdf(data: bytes) -> tuple[PdfReader, bool]:
    """A reader ready for page access, and whether the file was encrypted.

    An encrypted file that opens with the empty password is decrypted; one that needs a password
    raises `ExtractionError("encrypted")`; an unreadable one `ExtractionError("malformed PDF: ..")`.
    """
    from pypdf import PasswordType, PdfReader
    from pypdf.errors import DependencyError

    _quiet()
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        encrypted = bool(reader.is_encrypted)
    except DependencyError as exc:
        raise _needs_crypto(exc) from exc
    except Exception as exc:  # pypdf raises many types for broken files
        raise ExtractionError(f"malformed PDF: {short_error(exc)}") from exc
    if encrypted:
        try:
            result = reader.decrypt("")
        except DependencyError as exc:
            raise _needs_crypto(exc) from exc
        except Exception as exc:  # a broken security handler
            raise ExtractionError("encrypted", f"cannot decrypt: {short_error(exc)}") from exc
        if result == PasswordType.NOT_DECRYPTED:
            raise ExtractionError("encrypted", "the PDF is encrypted and needs a password")
    return reader, encrypted


def page_count(data: bytes) -> int:
    reader, _ = open_pdf(data)
    try:
        return len(reader.pages)
    except Exception as exc:
        raise ExtractionError(f"malformed PDF: {short_error(exc)}") from exc


def plan_windows(
    data: bytes, page_count: int, window_pages: int, max_bytes: int
) -> tuple[Part, ...]:
    """Page windows of at most `window_pages` pages whose written size fits `max_bytes`.

    A PDF of at most one window within the byte limit is one part: the whole file. A longer
    one is cut into consecutive windows; only when the whole file is over the byte limit are
    windows written out to measure them, and a window over it is halved until it fits (a single
    page over it stays alone).
    """
    if page_count < 1 or window_pages < 1 or max_bytes < 1:
        raise InvalidInput(
            f"cannot plan windows: page_count={page_count}, window_pages={window_pages}, "
            f"max_bytes={max_bytes} must all be positive"
        )
    small = len(data) <= max_bytes
    if page_count <= window_pages and small:
        return (Part(0, 1, page_count),)
    pending = [
        (s, min(s + window_pages - 1, page_count)) for s in range(1, page_count + 1, window_pages)
    ]
    if small:
        return tuple(Part(i, start, end) for i, (start, end) in enumerate(pending))
    reader, _ = open_pdf(data)
    ranges: list[tuple[int, int]] = []
    pending.reverse()
    while pending:
        start, end = pending.pop()
        if start == end or len(_write_pages(reader, start, end)) <= max_bytes:
            ranges.append((start, end))
            continue
        middle = (start + end) // 2
        pending.extend([(middle + 1, end), (start, middle)])  # popped in page order
    return tuple(Part(i, start, end) for i, (start, end) in enumerate(ranges))


def part_bytes(
    data: bytes, part: Part, *, page_count: int, encrypted: bool, reader: PdfReader | None = None
) -> bytes:
    """The bytes to upload for one part of a PDF.

    The whole document unencrypted is the original bytes untouched; the whole document
    encrypted is a decrypted copy; a page range is a new PDF of those pages, unencrypted.
    `reader` (from `open_pdf(data)`) saves parsing the file again for each of many windows.
    """
    if not 1 <= part.page_start <= part.page_end <= page_count:
        raise InvalidInput(
            f"part {part.index} (pages {part.page_start}-{part.page_end}) "
            f"is outside a {page_count}-page document"
        )
    whole = part.page_start == 1 and part.page_end == page_count
    if whole and not encrypted:
        return data
    if whole:
        return decrypted_copy(data)
    if reader is None:
        reader, _ = open_pdf(data)
    return _write_pages(reader, part.page_start, part.page_end)


def decrypted_copy(data: bytes) -> bytes:
    """The whole PDF written again by pypdf without encryption (outline and metadata kept)."""
    from pypdf import PdfWriter

    reader, _ = open_pdf(data)
    try:
        writer = PdfWriter(clone_from=reader)
        return _to_bytes(writer)
    except Exception as exc:
        raise ExtractionError(f"malformed PDF: cannot rewrite: {short_error(exc)}") from exc


def short_error(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:120]


def _write_pages(reader: PdfReader, start: int, end: int) -> bytes:
    from pypdf import PdfWriter

    writer = PdfWriter()
    try:
        for index in range(start - 1, end):
            writer.add_page(reader.pages[index])
        return _to_bytes(writer)
    except Exception as exc:
        raise ExtractionError(
            f"malformed PDF: cannot write pages {start}-{end}: {short_error(exc)}"
        ) from exc


def _to_bytes(writer: PdfWriter) -> bytes:
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def _needs_crypto(exc: BaseException) -> ExtractionError:
    return ExtractionError(
        "encrypted", f"decrypting this PDF needs the cryptography package: {short_error(exc)}"
    )


def _quiet() -> None:
    """pypdf reports damage through its logger and `warnings`; users should not see either."""
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="pypdf")

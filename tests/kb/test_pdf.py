"""Splitting PDFs into upload parts and writing decrypted copies."""

from __future__ import annotations

import io
import itertools
from pathlib import Path

import pytest
from pypdf import PdfReader

from kb.errors import ExtractionError, InvalidInput
from kb.pdf import decrypted_copy, open_pdf, page_count, part_bytes, plan_windows
from kb.types import Part
from standin.pdfs import encrypt_bytes, pdf_bytes

REAL_PDFS = Path(__file__).resolve().parents[3] / "shared" / "data" / "pdfs"


def page_texts(data: bytes) -> list[str]:
    reader = PdfReader(io.BytesIO(data))
    assert not reader.is_encrypted
    return [" ".join(page.extract_text().split()) for page in reader.pages]


def numbered(n: int, filler: int = 0) -> bytes:
    """Pages that say which page they are, optionally padded with many lines of text."""
    padding = "\n".join(f"line {i} of filler text for size" for i in range(filler))
    return pdf_bytes([f"Page {i} marker\n{padding}".strip() for i in range(1, n + 1)])


def assert_contiguous(parts: tuple[Part, ...], pages: int) -> None:
    assert [p.index for p in parts] == list(range(len(parts)))
    assert parts[0].page_start == 1
    assert parts[-1].page_end == pages
    for a, b in itertools.pairwise(parts):
        assert b.page_start == a.page_end + 1


def test_small_document_is_one_part() -> None:
    data = numbered(5)
    assert plan_windows(data, 5, window_pages=100, max_bytes=len(data)) == (Part(0, 1, 5),)


def test_split_by_page_limit() -> None:
    data = numbered(10)
    parts = plan_windows(data, 10, window_pages=4, max_bytes=10_000_000)
    assert parts == (Part(0, 1, 4), Part(1, 5, 8), Part(2, 9, 10))


def test_split_by_byte_limit_halves_ranges() -> None:
    data = numbered(8, filler=40)
    one_page = len(part_bytes(data, Part(0, 1, 1), page_count=8, encrypted=False))
    limit = int(one_page * 2.5)
    parts = plan_windows(data, 8, window_pages=8, max_bytes=limit)
    assert_contiguous(parts, 8)
    assert 1 < len(parts) < 8
    for part in parts:
        written = part_bytes(data, part, page_count=8, encrypted=False)
        assert len(written) <= limit
        expected = [f"Page {i} marker" for i in range(part.page_start, part.page_end + 1)]
        assert [t[: len(e)] for t, e in zip(page_texts(written), expected, strict=True)] == expected


def test_page_over_the_byte_limit_stays_alone() -> None:
    data = numbered(3)
    parts = plan_windows(data, 3, window_pages=10, max_bytes=1)
    assert parts == (Part(0, 1, 1), Part(1, 2, 2), Part(2, 3, 3))


def test_plan_rejects_nonsense() -> None:
    with pytest.raises(InvalidInput):
        plan_windows(numbered(1), 1, window_pages=0, max_bytes=100)


def test_whole_unencrypted_part_is_the_original() -> None:
    data = numbered(3)
    assert part_bytes(data, Part(0, 1, 3), page_count=3, encrypted=False) is data


def test_part_bytes_writes_the_range() -> None:
    data = numbered(6)
    written = part_bytes(data, Part(1, 3, 5), page_count=6, encrypted=False)
    assert page_texts(written) == ["Page 3 marker", "Page 4 marker", "Page 5 marker"]


def test_part_outside_the_document_is_rejected() -> None:
    with pytest.raises(InvalidInput):
        part_bytes(numbered(2), Part(0, 2, 3), page_count=2, encrypted=False)


@pytest.mark.parametrize("aes", [True, False])
def test_encrypted_whole_part_is_a_decrypted_copy(aes: bool) -> None:
    data = encrypt_bytes(numbered(2), aes=aes)
    assert PdfReader(io.BytesIO(data)).is_encrypted
    whole = part_bytes(data, Part(0, 1, 2), page_count=2, encrypted=True)
    assert page_texts(whole) == ["Page 1 marker", "Page 2 marker"]
    second = part_bytes(data, Part(1, 2, 2), page_count=2, encrypted=True)
    assert page_texts(second) == ["Page 2 marker"]


def test_decrypted_copy_keeps_metadata() -> None:
    data = encrypt_bytes(pdf_bytes(["Kept text"], title="Kept Title"))
    copy = decrypted_copy(data)
    reader = PdfReader(io.BytesIO(copy))
    assert not reader.is_encrypted
    assert reader.metadata is not None and reader.metadata.title == "Kept Title"
    assert page_texts(copy) == ["Kept text"]


def test_decrypted_copy_needs_the_empty_password() -> None:
    data = encrypt_bytes(numbered(1), user_password="secret")
    with pytest.raises(ExtractionError) as info:
        decrypted_copy(data)
    assert info.value.reason == "encrypted"


def test_open_and_count() -> None:
    reader, encrypted = open_pdf(encrypt_bytes(numbered(4)))
    assert encrypted and len(reader.pages) == 4
    assert page_count(numbered(7)) == 7
    with pytest.raises(ExtractionError) as info:
        page_count(b"%PDF-1.4 nonsense")
    assert info.value.reason.startswith("malformed PDF")


@pytest.mark.skipif(not REAL_PDFS.is_dir(), reason=f"no real-world PDFs at {REAL_PDFS}")
@pytest.mark.parametrize(
    "name",
    ["r4-aes-v2-no-key-length.pdf", "r5-user-password.pdf", "r6-empty-password.pdf"],
)
def test_real_encrypted_pdfs_decrypt(name: str) -> None:
    data = (REAL_PDFS / "pypdf-resources" / "resources" / "encryption" / name).read_bytes()
    _, encrypted = open_pdf(data)
    assert encrypted
    copy = part_bytes(data, Part(0, 1, 1), page_count=1, encrypted=True)
    assert page_texts(copy)[0]


@pytest.mark.skipif(not REAL_PDFS.is_dir(), reason=f"no real-world PDFs at {REAL_PDFS}")
def test_real_long_pdf_splits_into_parts() -> None:
    path = REAL_PDFS / "sample-files" / "009-pdflatex-geotopo" / "GeoTopo-komprimiert.pdf"
    data = path.read_bytes()
    parts = plan_windows(data, 117, window_pages=50, max_bytes=len(data))
    assert_contiguous(parts, 117)
    assert [p.page_end - p.page_start + 1 for p in parts] == [50, 50, 17]
    last = part_bytes(data, parts[-1], page_count=117, encrypted=False)
    assert len(PdfReader(io.BytesIO(last)).pages) == 17

"""Extraction of PDFs, text and images: pages, titles, notes and the reasons files fail."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from kb.errors import ExtractionError
from kb.extraction import (
    MAX_FILE_CHARS,
    MAX_PAGE_CHARS,
    Limits,
    extract,
    filename_words,
    is_garbled,
    is_sidecar,
    kind_of,
    markdown_title,
    meaningful_title,
    page_ranges,
    sniff_mime,
)
from standin.pdfs import (
    inflating_pdf_bytes,
    make_image_only_pdf,
    make_pdf,
    make_png,
    pdf_bytes,
)

REAL_PDFS = Path(__file__).resolve().parents[3] / "shared" / "data" / "pdfs"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 20
GIF = b"GIF89a\x01\x00\x01\x00" + b"\x00" * 20
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 20


def words(text: str) -> list[str]:
    return text.split()


# --- kinds and sniffing ---------------------------------------------------------------------


def test_sniff_mime() -> None:
    assert sniff_mime(pdf_bytes(["x"])) == "application/pdf"
    assert sniff_mime(b"\x89PNG\r\n\x1a\n....") == "image/png"
    assert sniff_mime(JPEG) == "image/jpeg"
    assert sniff_mime(GIF) == "image/gif"
    assert sniff_mime(WEBP) == "image/webp"
    assert sniff_mime(b"RIFF\x24\x00\x00\x00WAVEfmt ") is None
    assert sniff_mime(b"hello") is None
    assert sniff_mime(b"") is None


def test_kind_by_extension_and_magic(tmp_path: Path) -> None:
    for name in ["a.txt", "b.md", "c.markdown", "d.text", "e.RST"]:
        (tmp_path / name).write_text("hello")
        assert kind_of(tmp_path / name) == "text", name
    assert kind_of(make_pdf(tmp_path / "r.pdf", ["x"])) == "pdf"
    assert kind_of(make_png(tmp_path / "p.png")) == "image"
    (tmp_path / "scan").write_bytes(pdf_bytes(["no extension"]))
    assert kind_of(tmp_path / "scan") == "pdf"
    (tmp_path / "photo.bin").write_bytes(JPEG)
    assert kind_of(tmp_path / "photo.bin") == "image"
    (tmp_path / "data.csv").write_text("a,b\n")
    assert kind_of(tmp_path / "data.csv") is None
    assert kind_of(tmp_path / "missing.docx") is None


def test_sidecar_needs_its_image(tmp_path: Path) -> None:
    (tmp_path / "chart.png.txt").write_text("Revenue by quarter")
    assert not is_sidecar(tmp_path / "chart.png.txt")
    make_png(tmp_path / "chart.png")
    assert is_sidecar(tmp_path / "chart.png.txt")
    (tmp_path / "notes.txt").write_text("plain")
    assert not is_sidecar(tmp_path / "notes.txt")


# --- text -----------------------------------------------------------------------------------


def test_markdown_title_and_text(tmp_path: Path) -> None:
    path = tmp_path / "guide.md"
    path.write_text("Intro line\n\n```sh\n# not a title\n```\n# Real Title #\n\nBody text.\n")
    result = extract(path)
    assert result.kind == "text"
    assert result.mime_type == "text/plain"
    assert result.title == "Real Title"
    assert result.page_count == 1
    assert result.pages[0].number == 1
    assert result.pages[0].text == path.read_text()


def test_text_title_falls_back_to_stem_and_setext(tmp_path: Path) -> None:
    path = tmp_path / "release-notes.txt"
    path.write_text("No heading here.\n## Second level only\n")
    assert extract(path).title == "release-notes"
    assert markdown_title("Glossary\n========\n\nterms") == "Glossary"


def test_utf8_bom_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "bom.txt"
    path.write_bytes(b"\xef\xbb\xbfcaf\xc3\xa9 au lait")
    assert extract(path).pages[0].text == "café au lait"


def test_not_utf8_names_the_offset(tmp_path: Path) -> None:
    path = tmp_path / "latin1.txt"
    path.write_bytes(b"abc caf\xe9")
    with pytest.raises(ExtractionError) as info:
        extract(path)
    assert info.value.reason.startswith("not UTF-8 text")
    assert "offset 7" in info.value.reason
    assert "latin1.txt" in info.value.message


def test_binary_with_text_extension_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "blob.md"
    path.write_bytes(b"abc\x00\x00def")
    with pytest.raises(ExtractionError, match="NUL byte at offset 3"):
        extract(path)


@pytest.mark.parametrize("content", [b"", b"  \n\t\r\n ", b"\xef\xbb\xbf\n"])
def test_empty_text_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "empty.md"
    path.write_bytes(content)
    with pytest.raises(ExtractionError) as info:
        extract(path)
    assert info.value.reason == "empty file"


def test_unsupported_and_missing(tmp_path: Path) -> None:
    (tmp_path / "sheet.xlsx").write_bytes(b"PK\x03\x04")
    with pytest.raises(ExtractionError) as info:
        extract(tmp_path / "sheet.xlsx")
    assert info.value.reason == "unsupported type"
    with pytest.raises(ExtractionError) as info:
        extract(tmp_path / "gone.txt")
    assert info.value.reason == "unreadable"


# --- images ---------------------------------------------------------------------------------


def test_image_indexed_by_filename(tmp_path: Path) -> None:
    result = extract(make_png(tmp_path / "q3_sales-chart.png"))
    assert result.kind == "image"
    assert result.mime_type == "image/png"
    assert result.title == "q3 sales chart"
    assert "q3 sales chart" in result.pages[0].text
    assert result.notes == ("image: indexed by filename",)


def test_image_with_sidecar(tmp_path: Path) -> None:
    image = make_png(tmp_path / "chart.png")
    Path(f"{image}.txt").write_text("Bar chart of revenue per region in 2025.\n")
    result = extract(image)
    assert result.pages[0].text == "chart\n\nBar chart of revenue per region in 2025."
    assert result.notes == ("image: indexed by filename and sidecar",)


def test_image_mime_comes_from_magic(tmp_path: Path) -> None:
    (tmp_path / "photo.png").write_bytes(JPEG)
    assert extract(tmp_path / "photo.png").mime_type == "image/jpeg"
    (tmp_path / "anim.gif").write_bytes(GIF)
    assert extract(tmp_path / "anim.gif").mime_type == "image/gif"
    (tmp_path / "pic.webp").write_bytes(WEBP)
    assert extract(tmp_path / "pic.webp").mime_type == "image/webp"


def test_fake_image_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "fake.png").write_text("not really a picture")
    with pytest.raises(ExtractionError) as info:
        extract(tmp_path / "fake.png")
    assert info.value.reason == "malformed image"


def test_filename_words() -> None:
    assert filename_words("Annual_Report-2025.final.png") == "Annual Report 2025 final"
    assert filename_words(".hidden") == "hidden"


# --- PDFs -----------------------------------------------------------------------------------


def test_pdf_pages_and_metadata_title(tmp_path: Path) -> None:
    path = make_pdf(
        tmp_path / "report.pdf",
        ["Revenue grew to 48 million.", "", "Outlook for next year."],
        title="Annual Report",
    )
    result = extract(path)
    assert result.kind == "pdf"
    assert result.mime_type == "application/pdf"
    assert result.title == "Annual Report"
    assert result.page_count == 3
    assert [p.number for p in result.pages] == [1, 2, 3]
    assert words(result.pages[0].text) == ["Revenue", "grew", "to", "48", "million."]
    assert result.pages[1].text == ""
    assert "Outlook" in result.pages[2].text
    assert not result.encrypted
    assert result.notes == ()


@pytest.mark.parametrize("title", [None, "Untitled", "  ", "Microsoft Word - report.docx"])
def test_pdf_title_falls_back_to_stem(tmp_path: Path, title: str | None) -> None:
    path = make_pdf(tmp_path / "q3-summary.pdf", ["text"], title=title)
    assert extract(path).title == "q3-summary"


def test_meaningful_title() -> None:
    assert meaningful_title("Microsoft Word - Travel Policy") == "Travel Policy"
    assert meaningful_title("  Annual\n Report ") == "Annual Report"
    assert meaningful_title("1234") is None
    assert meaningful_title(None) is None


@pytest.mark.parametrize("aes", [True, False])
def test_pdf_encrypted_with_empty_password_is_read(tmp_path: Path, aes: bool) -> None:
    path = make_pdf(tmp_path / "locked.pdf", ["Open secret"], empty_password_encrypt=True, aes=aes)
    result = extract(path)
    assert result.encrypted
    assert words(result.pages[0].text) == ["Open", "secret"]


def test_pdf_needing_a_password_fails(tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "secret.pdf", ["Hidden"], user_password="hunter2")
    with pytest.raises(ExtractionError) as info:
        extract(path)
    assert info.value.reason == "encrypted"


def test_image_only_pdf(tmp_path: Path) -> None:
    result = extract(make_image_only_pdf(tmp_path / "scan.pdf", 3))
    assert result.page_count == 3
    assert all(p.text == "" for p in result.pages)
    assert result.notes == ("image-only: no text layer",)


def test_garbled_pages_are_dropped(tmp_path: Path) -> None:
    junk = "#$%& *+/<> =@[]^ {|}~ " * 20
    path = make_pdf(tmp_path / "mixed.pdf", ["Real words here.", junk, junk, "More words."])
    result = extract(path)
    assert [p.text for p in result.pages][1:3] == ["", ""]
    assert "Real" in result.pages[0].text and "More" in result.pages[3].text
    assert result.notes == ("garbled text skipped: pages 2-3",)


def test_is_garbled() -> None:
    assert not is_garbled("An ordinary sentence with numbers 1, 2 and 3.")
    assert not is_garbled("مرحبا بالعالم هذا نص عربي عادي")
    assert not is_garbled("12.5  13.0  14.2  15.8  16.1")
    assert not is_garbled("!!")  # too short to judge
    assert is_garbled("\ue000\ue001\ue002\ue003\ue004 ab \ue005\ue006\ue007\ue008")
    assert is_garbled("\ufffd" * 30 + "abc")
    assert is_garbled("\x01\x02\x03\x04\x05\x06\x07\x08\x0e\x0f\x10\x11")
    assert is_garbled("%$#@!&*()_+{}|:<>?~" * 3)
    statement = "Cash and cash equivalents" + "." * 120 + " $ 876,560 $ 1,117,400\n"
    assert not is_garbled(statement * 20), "dot leaders of a financial statement are not junk"


def test_page_ranges() -> None:
    assert page_ranges([4]) == "page 4"
    assert page_ranges([5, 3, 4, 9]) == "pages 3-5, 9"
    assert page_ranges([1, 3]) == "pages 1, 3"


def test_page_that_fails_to_extract_is_a_note(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pypdf import PageObject

    original = PageObject.extract_text

    def flaky(self: PageObject, *args: object, **kwargs: object) -> str:
        if "Broken" in original(self):
            raise KeyError("/Font")
        return original(self)

    monkeypatch.setattr(PageObject, "extract_text", flaky)
    result = extract(make_pdf(tmp_path / "f.pdf", ["Fine page", "Broken page", "Fine again"]))
    assert [p.text for p in result.pages][1] == ""
    assert "Fine" in result.pages[2].text
    assert result.notes == ("text extraction failed: page 2",)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty file"),
        (b"%PDF-1.7\nthis is not really a pdf", "malformed PDF"),
        (b"PK\x03\x04 a zip named pdf", "malformed PDF"),
    ],
)
def test_broken_pdf(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "broken.pdf"
    path.write_bytes(content)
    with pytest.raises(ExtractionError) as info:
        extract(path)
    assert info.value.reason.startswith(reason)


def test_truncated_pdf(tmp_path: Path) -> None:
    data = pdf_bytes(["Some text on a page that will be cut"] * 3)
    path = tmp_path / "cut.pdf"
    path.write_bytes(data[: len(data) // 3])
    try:
        result = extract(path)
    except ExtractionError as exc:
        assert exc.reason.startswith("malformed PDF")
    else:
        assert result.kind == "pdf"


def test_pypdf_noise_stays_quiet(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    data = pdf_bytes(["Text survives a damaged cross-reference table"])
    damaged = data.replace(b"startxref", b"startxref\n999999\n%%EOF\n%", 1)
    path = tmp_path / "damaged.pdf"
    path.write_bytes(damaged)
    with caplog.at_level(logging.WARNING), contextlib.suppress(ExtractionError):
        extract(path)
    assert logging.getLogger("pypdf").level == logging.ERROR
    assert not [r for r in caplog.records if r.name.startswith("pypdf") and r.levelno < 40]
    out, err = capfd.readouterr()
    assert "pypdf" not in err and out == ""


def test_extract_runs_in_a_worker_process(tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "w.pdf", ["Worker process text"])
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        result = pool.submit(extract, path).result(timeout=120)
        with pytest.raises(ExtractionError) as info:
            pool.submit(extract, tmp_path / "none.csv").result(timeout=60)
    assert words(result.pages[0].text) == ["Worker", "process", "text"]
    assert info.value.reason == "unsupported type"


def test_example_corpus_extracts() -> None:
    examples = Path(__file__).resolve().parents[2] / "examples"
    report = extract(examples / "annual-report-2025.pdf")
    assert report.page_count == 6
    assert "48.6 million" in report.pages[1].text
    assert all("48.6 million" not in p.text for p in report.pages if p.number != 2)
    assert extract(examples / "espresso-manual.md").title.startswith("Corvina Duo")


# --- real-world PDFs ------------------------------------------------------------------------


def _manifest() -> list[dict[str, object]]:
    manifest = REAL_PDFS / "manifest.jsonl"
    if not manifest.is_file():
        return []
    return [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]


@pytest.mark.skipif(not _manifest(), reason=f"no real-world PDFs at {REAL_PDFS}")
@pytest.mark.parametrize("entry", _manifest(), ids=lambda e: str(e["file"]).rsplit("/", 1)[-1])
def test_real_world_pdf(entry: dict[str, object]) -> None:
    categories = set(entry["categories"])  # type: ignore[call-overload]
    try:
        result = extract(REAL_PDFS / str(entry["file"]))
    except ExtractionError as exc:
        assert exc.reason
        if "encrypted_needs_password" in categories:
            assert exc.reason == "encrypted"
        else:
            assert "load_error" in categories, f"unexpected failure: {exc.reason}"
    else:
        assert "encrypted_needs_password" not in categories
        assert "load_error" not in categories
        assert result.page_count == entry["pypdf_pages"] == len(result.pages)
        assert result.encrypted == ("encrypted_open_with_empty" in categories)
        if "no_text_image_only" in categories:
            assert "image-only: no text layer" in result.notes
        else:
            assert any(p.text.strip() for p in result.pages)


# --- what one file may cost -----------------------------------------------------------------


def test_a_page_that_inflates_to_millions_of_characters_is_cut(tmp_path: Path) -> None:
    data = inflating_pdf_bytes(4_850_000)
    assert len(data) < 25_000
    path = tmp_path / "bomb.pdf"
    path.write_bytes(data)
    result = extract(path)
    assert result.page_count == 1
    assert len(result.pages[0].text) == MAX_PAGE_CHARS
    assert result.pages[0].text.startswith("lorem ipsum dolor")
    assert result.notes == (f"text cut at {MAX_PAGE_CHARS:,} characters: page 1",)


def test_text_beyond_the_file_limit_is_dropped_with_a_note(tmp_path: Path) -> None:
    path = tmp_path / "many.pdf"
    path.write_bytes(inflating_pdf_bytes(5_000, pages=10))
    result = extract(path, limits=Limits(page_chars=4_000, file_chars=10_000))
    lengths = [len(p.text) for p in result.pages]
    assert lengths == [4_000, 4_000, 2_000] + [0] * 7
    assert result.page_count == 10
    assert result.notes == (
        "text cut at 4,000 characters: pages 1-2",
        "text beyond 10,000 characters in the file dropped: pages 3-10",
    )
    text = tmp_path / "long.txt"
    text.write_text("word " * 5_000)
    result = extract(text, limits=Limits(file_chars=1_000))
    assert len(result.pages[0].text) == 1_000
    assert result.notes == ("text beyond 1,000 characters dropped (of 25,000)",)


def test_a_long_filing_keeps_all_its_text_under_the_default_limits(tmp_path: Path) -> None:
    """500 pages of about 4,500 characters each: 2.25 million characters, none dropped."""
    from pypdf import PdfReader, PdfWriter

    dense = "Net revenue by segment and region, with the notes to the accounts. " * 66
    page = PdfReader(io.BytesIO(pdf_bytes([dense]))).pages[0]
    writer = PdfWriter()
    for _ in range(500):
        writer.add_page(page)
    path = tmp_path / "filing.pdf"
    with path.open("wb") as handle:
        writer.write(handle)
    result = extract(path)
    assert result.page_count == 500 and result.notes == ()
    assert all(words(p.text) == words(dense) for p in (result.pages[0], result.pages[-1]))
    assert 2_000_000 < sum(len(p.text) for p in result.pages) <= MAX_FILE_CHARS

"""Small real files for tests and benchmarks: text PDFs (optionally encrypted), image-only
PDFs, PNG images.

PDFs are written by fpdf2 with a fixed creation date, so the same arguments give the same bytes
(encryption adds random salts). Page text uses the core Helvetica font: Latin-1 only.
"""

from __future__ import annotations

import datetime as dt
import io
import struct
import zlib
from pathlib import Path

FIXED_DATE = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
OWNER_PASSWORD = "owner-secret"


def pdf_bytes(pages: list[str], *, title: str | None = None) -> bytes:
    """A PDF with one page per string; each page's text is extractable by pypdf."""
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_creation_date(FIXED_DATE)
    pdf.set_auto_page_break(auto=False)
    if title is not None:
        pdf.set_title(title)
    for text in pages:
        pdf.add_page()
        pdf.set_font("Helvetica", size=11)
        if text:
            pdf.multi_cell(0, 6, text)
    return bytes(pdf.output())


def encrypt_bytes(data: bytes, *, user_password: str = "", aes: bool = True) -> bytes:
    """The PDF encrypted by pypdf; an empty user password opens without asking."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    writer.encrypt(
        user_password=user_password,
        owner_password=OWNER_PASSWORD,
        algorithm="AES-256" if aes else "RC4-128",
    )
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def make_pdf(
    path: Path,
    pages: list[str],
    *,
    title: str | None = None,
    user_password: str | None = None,
    empty_password_encrypt: bool = False,
    aes: bool = True,
) -> Path:
    """Write a PDF with the given page texts; encrypt it when a password or the flag asks."""
    data = pdf_bytes(pages, title=title)
    if user_password:
        data = encrypt_bytes(data, user_password=user_password, aes=aes)
    elif empty_password_encrypt:
        data = encrypt_bytes(data, user_password="", aes=aes)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def png_bytes(width: int = 2, height: int = 2, rgb: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    """A valid RGB PNG of one colour, written without an imaging library."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        )

    row = b"\x00" + bytes(rgb) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


def make_png(path: Path, width: int = 2, height: int = 2) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png_bytes(width, height))
    return path


def make_image_only_pdf(path: Path, n_pages: int) -> Path:
    """A PDF whose pages hold only a raster image: no text layer at all."""
    from fpdf import FPDF

    image = io.BytesIO(png_bytes(16, 16, (40, 90, 160)))
    pdf = FPDF(format="A4")
    pdf.set_creation_date(FIXED_DATE)
    for _ in range(n_pages):
        pdf.add_page()
        pdf.image(image, x=20, y=20, w=120)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(pdf.output()))
    return path


def inflating_pdf_bytes(chars: int, pages: int = 1) -> bytes:
    """A small PDF whose one compressed content stream, shared by every page, extracts to about
    `chars` characters per page: 4.85 million characters fit in under 20 KB."""
    line = b"(lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor ) Tj T* "
    content = b"BT /F1 10 Tf 12 TL 20 800 Td " + line * max(chars // 78, 1) + b"ET"
    stream = zlib.compress(content, 9)
    font = 4 + pages
    kids = " ".join(f"{4 + i} 0 R" for i in range(pages))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {pages} >>".encode(),
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream",
        *(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 3 0 R "
            f"/Resources << /Font << /F1 {font} 0 R >> >> >>".encode()
            for _ in range(pages)
        ),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)

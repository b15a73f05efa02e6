"""Bytes on the wire per question: documents attached by `file_id` versus inline base64.

Runs the Anthropic stand-in on loopback, uploads generated PDFs of 10 KB to 20 MB once through
`AnthropicFileStore`, then asks the same question twice per size: once as kb sends it
(`ClaudeAnswerer`, a `file` source) and once with the same document inline as base64. The
byte counts are what the real SDK sent, read from the stand-in's request log.

    .venv/bin/python bench/request_size.py [--sizes 10k,100k,1m,5m,20m]
    (or .venv/bin/python -m bench.request_size)
"""

from __future__ import annotations

import argparse
import base64
import io
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Run as a script: the repository first (the stand-in is in standin/, and bench/ingest.py
# must not shadow the ingest package).
sys.path.insert(0, str(ROOT))

SIZES = "10k,100k,1m,5m,20m"
QUESTION = "What colour is the lighthouse tower?"


def parse_size(text: str) -> int:
    units = {"k": 1024, "m": 1024 * 1024}
    text = text.strip().lower()
    return int(float(text[:-1]) * units[text[-1]]) if text[-1] in units else int(text)


def make_pdf(size: int) -> bytes:
    """A one-page PDF with a text layer, padded to about `size` bytes with an attachment of
    random (incompressible) bytes."""
    from pypdf import PdfReader, PdfWriter

    from standin.pdfs import pdf_bytes

    base = pdf_bytes(["The lighthouse tower is painted green and white."])
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(base)))
    if size > len(base) + 600:
        writer.add_attachment("padding.bin", os.urandom(size - len(base) - 600))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def human(n: float) -> str:
    for unit in ("B", "KB", "MB"):
        if n < 1024 or unit == "MB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=SIZES, help=f"comma list (default {SIZES})")
    args = parser.parse_args(argv)

    from kb.anthropic.answerer import ClaudeAnswerer
    from kb.anthropic.client import make_client
    from kb.anthropic.files import AnthropicFileStore
    from kb.anthropic.request import Pick, Plan
    from kb.index import new_kb_id
    from kb.settings import Settings
    from kb.types import Chunk, ChunkHit, Document, DocumentHit, Part, RemoteFile
    from standin.server import StandIn, serve

    app = StandIn()
    app.state.max_body_bytes = 64 * 1024 * 1024  # measure, don't reject the inline variant
    server, thread, base_url = serve(app)
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(
                data_dir=Path(tmp), anthropic_api_key="sk-bench", anthropic_base_url=base_url
            )
            client = make_client(settings)
            store = AnthropicFileStore(client, settings, new_kb_id())
            same = lambda doc: doc  # noqa: E731 - the document is uploaded and windowed already
            answerer = ClaudeAnswerer(
                client,
                settings,
                in_windows=same,
                ensure_uploaded=same,
                reupload=same,
                file_exists=store.exists,
            )
            for label in args.sizes.split(","):
                data = make_pdf(parse_size(label))
                doc_id = f"{len(data):064d}"
                file_id = store.upload(doc_id, 0, "bench.pdf", "application/pdf", data)
                upload_bytes = app.state.log[-1].body_size
                doc = Document(
                    id=doc_id,
                    title="Bench document",
                    kind="pdf",
                    mime_type="application/pdf",
                    size_bytes=len(data),
                    page_count=1,
                    chunk_count=1,
                    sources=("/bench/bench.pdf",),
                    parts=(Part(0, 1, 1),),
                    files=(RemoteFile(file_id, 0, 1, 1),),
                    file_store="anthropic",
                )
                hit = DocumentHit(doc, 1.0, (ChunkHit(Chunk(doc_id, 0, 0, "x", 1, 1), 1.0),))
                answerer.answer(QUESTION, [hit])
                by_id = app.state.log[-1].body_size
                request = Plan.of(QUESTION, [Pick(doc, doc.parts[0], 1.0)]).request(settings)
                request["messages"][0]["content"][0]["source"] = {
                    "type": "base64",
                    "media_type": "application/pdf",
                    "data": base64.b64encode(data).decode(),
                }
                client.messages.create(**request)
                inline = app.state.log[-1].body_size
                rows.append(
                    (
                        human(len(data)),
                        human(upload_bytes),
                        human(by_id),
                        human(inline),
                        f"{inline / by_id:,.0f}x",
                    )
                )
            client.close()
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    from kb.cli import print_table

    print_table(
        ("PDF", "UPLOAD ONCE", "PER QUESTION (file_id)", "PER QUESTION (base64)", "RATIO"), rows
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

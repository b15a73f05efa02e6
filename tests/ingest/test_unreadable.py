"""PDFs that cannot be read are remembered by their bytes: an unchanged re-run reports them
again without reading them, a new pypdf reads them again, and a time-out is always tried again
(a quieter machine may not repeat it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ingest import ingest_paths
from ingest.extractor import Extractor
from kb.errors import ExtractionError
from standin.pdfs import make_pdf
from tests.ingest.test_pipeline import statuses

LOCKED = "failed: the PDF is encrypted and needs a password"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "mixed"
    root.mkdir()
    (root / "tides.txt").write_text("Spring tides rise two metres above the quay.\n")
    make_pdf(root / "locked.pdf", ["Harbour dues."], user_password="s3cret")
    (root / "broken.pdf").write_bytes(b"%PDF-1.4 broken")
    return root


def counting(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the files the extractor is asked to read from now on."""
    read: list[str] = []
    extract = Extractor.extract

    def spy(self: Extractor, path: Path) -> Any:
        read.append(path.name)
        return extract(self, path)

    monkeypatch.setattr(Extractor, "extract", spy)
    return read


def test_an_unreadable_pdf_is_reported_again_without_being_read(
    knowledge_base: Any, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = statuses(ingest_paths(knowledge_base, [folder]))
    assert first["tides.txt"] == "added"
    assert first["locked.pdf"] == LOCKED
    assert first["broken.pdf"].startswith("failed: malformed PDF")

    read = counting(monkeypatch)
    again = statuses(ingest_paths(knowledge_base, [folder]))
    assert again == {**first, "tides.txt": "unchanged"}
    assert read == []  # nothing parsed, no extraction process started

    (folder / "copy of locked.pdf").write_bytes((folder / "locked.pdf").read_bytes())
    assert statuses(ingest_paths(knowledge_base, [folder]))["copy of locked.pdf"] == LOCKED
    assert read == []  # the same bytes under another name

    monkeypatch.setattr("ingest.failures.version", lambda name: "99.0")  # a new pypdf
    assert statuses(ingest_paths(knowledge_base, [folder])) == {
        **again,
        "copy of locked.pdf": LOCKED,
    }
    assert sorted(read) == ["broken.pdf", "copy of locked.pdf"]  # its twin: known by then


def test_a_time_out_is_tried_again(
    knowledge_base: Any, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    extract = Extractor.extract

    def slow(self: Extractor, path: Path) -> Any:
        if path.name == "locked.pdf":
            raise ExtractionError("timed out", "timed out: extraction took longer than 1s")
        return extract(self, path)

    monkeypatch.setattr(Extractor, "extract", slow)
    first = statuses(ingest_paths(knowledge_base, [folder]))
    assert first["locked.pdf"] == "failed: timed out: extraction took longer than 1s"
    monkeypatch.setattr(Extractor, "extract", extract)
    read = counting(monkeypatch)
    assert statuses(ingest_paths(knowledge_base, [folder]))["locked.pdf"] == LOCKED
    assert read == ["locked.pdf"]  # broken.pdf is remembered, the time-out is not

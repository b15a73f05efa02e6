"""The ingest pipeline against real Chroma, the real model and generated files."""

from __future__ import annotations

import dataclasses
import os
import re
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from ingest import ingest_paths, ingest_uploads
from ingest.extractor import Extractor
from kb.errors import ExtractionError, InvalidInput
from standin.pdfs import make_image_only_pdf, make_pdf, make_png


def statuses(report) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {Path(r.path).name: r.label for r in report.results}


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "corpus"
    root.mkdir()
    (root / "espresso.md").write_text(
        "# Espresso machine\n\nDescale the boiler every three months with citric acid.\n"
    )
    (root / "travel.txt").write_text("Employees fly economy class on flights under six hours.\n")
    make_pdf(
        root / "report.pdf",
        ["Annual report overview.", "Revenue in 2025 was 41 million euros.", "Outlook: calm."],
    )
    return root


def test_ingest_then_rerun_is_a_no_op(knowledge_base, corpus: Path) -> None:
    first = ingest_paths(knowledge_base, [corpus])
    assert statuses(first) == {"espresso.md": "added", "report.pdf": "added", "travel.txt": "added"}
    assert first.failed == 0
    assert first.embedded_chunks >= 3
    assert first.uploaded_files == 3
    pdf = next(r for r in first.results if r.path.endswith("report.pdf"))
    assert pdf.pages == 3

    second = ingest_paths(knowledge_base, [corpus])
    assert set(statuses(second).values()) == {"unchanged"}
    assert second.embedded_chunks == 0
    assert second.uploaded_files == 0
    assert knowledge_base.index.count() == 3


def test_chunks_carry_original_pages(knowledge_base, corpus: Path) -> None:
    ingest_paths(knowledge_base, [corpus])
    vector = knowledge_base.embedder.embed(["revenue in 2025"])[0]
    hits = knowledge_base.index.query(vector, 3)
    best = hits[0].chunk
    assert "41 million" in best.text
    assert best.page_start <= 2 <= best.page_end


def test_changed_file_replaces_the_old_version(knowledge_base, corpus: Path) -> None:
    ingest_paths(knowledge_base, [corpus])
    old = knowledge_base.index.find_by_source(str((corpus / "travel.txt").resolve()))[0]
    (corpus / "travel.txt").write_text("Employees may fly business class on night flights.\n")

    report = ingest_paths(knowledge_base, [corpus])

    assert statuses(report)["travel.txt"] == "updated"
    assert knowledge_base.index.get(old.id) is None
    assert knowledge_base.index.chunks(old.id) == []
    assert not knowledge_base.blobs.has(old.id)
    new = knowledge_base.index.find_by_source(str((corpus / "travel.txt").resolve()))
    assert len(new) == 1 and "business class" in knowledge_base.index.chunks(new[0].id)[0].text
    assert knowledge_base.index.count() == 3


def test_prune_removes_vanished_files_only_under_given_roots(
    knowledge_base, corpus: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("A note kept in another folder.\n")
    ingest_paths(knowledge_base, [corpus, other])
    (corpus / "espresso.md").unlink()
    (other / "keep.txt").rename(other / "moved-away.bak")

    without = ingest_paths(knowledge_base, [corpus])
    assert "removed" not in statuses(without).values()
    assert knowledge_base.index.count() == 4

    pruned = ingest_paths(knowledge_base, [corpus], prune=True)
    assert statuses(pruned)["espresso.md"] == "removed"
    sources = {s for d in knowledge_base.index.documents() for s in d.sources}
    assert str((other / "keep.txt").resolve()) in sources  # not under the pruned root
    assert knowledge_base.index.count() == 3


def test_same_content_under_two_names_is_one_document(knowledge_base, corpus: Path) -> None:
    (corpus / "copy-of-travel.txt").write_bytes((corpus / "travel.txt").read_bytes())
    report = ingest_paths(knowledge_base, [corpus])
    assert statuses(report)["copy-of-travel.txt"] == "added"
    assert knowledge_base.index.count() == 3
    doc = knowledge_base.index.find_by_source(str((corpus / "travel.txt").resolve()))[0]
    assert len(doc.sources) == 2

    (corpus / "copy-of-travel.txt").unlink()
    ingest_paths(knowledge_base, [corpus], prune=True)
    assert knowledge_base.index.get(doc.id).sources == (str((corpus / "travel.txt").resolve()),)


def test_bad_files_get_a_status_and_never_stop_the_batch(knowledge_base, tmp_path: Path) -> None:
    root = tmp_path / "mixed"
    root.mkdir()
    (root / "good.txt").write_text("Valid text about lighthouses.\n")
    (root / "latin1.txt").write_bytes("caf\xe9 cr\xe8me".encode("latin-1"))
    (root / "empty.md").write_text("   \n")
    (root / "data.xlsx").write_bytes(b"PK\x03\x04 not really")
    (root / "broken.pdf").write_bytes(b"%PDF-1.4\n this is not a pdf at all")
    make_pdf(root / "locked.pdf", ["Secret numbers."], user_password="hunter2")
    make_pdf(
        root / "open-encrypted.pdf",
        ["Quarterly figures for the fleet."],
        empty_password_encrypt=True,
    )
    make_image_only_pdf(root / "scan.pdf", 2)
    make_png(root / "chart.png")
    (root / "chart.png.txt").write_text("Bar chart of lighthouse visitors per year.")

    report = ingest_paths(knowledge_base, [root])
    got = statuses(report)

    assert got["good.txt"] == "added"
    assert got["latin1.txt"].startswith("failed: ")
    assert got["empty.md"].startswith("skipped: ")
    assert got["data.xlsx"] == "skipped: unsupported type"
    assert got["broken.pdf"].startswith("failed: ")
    assert got["locked.pdf"].startswith("failed: ") and "encrypted" in got["locked.pdf"]
    assert got["open-encrypted.pdf"].startswith("added")
    assert got["scan.pdf"].startswith("added") and "image-only" in got["scan.pdf"]
    assert got["chart.png"].startswith("added")
    assert "chart.png.txt" not in got  # a sidecar, not a document
    assert report.failed == 3
    encrypted = knowledge_base.index.find_by_source(str((root / "open-encrypted.pdf").resolve()))
    assert encrypted[0].encrypted


def test_interrupted_run_leaves_nothing_complete_and_resumes(
    knowledge_base, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = knowledge_base.index

    def crash(docs):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt

    monkeypatch.setattr(index, "commit_many", crash)
    with pytest.raises(KeyboardInterrupt):
        ingest_paths(knowledge_base, [corpus])
    monkeypatch.undo()

    assert index.count() == 0
    assert index.chunk_count() > 0  # written, but invisible without a record
    assert index.query(knowledge_base.embedder.embed(["descale"])[0], 5) == []

    report = ingest_paths(knowledge_base, [corpus])
    assert set(statuses(report).values()) == {"added"}
    assert index.chunk_count() == sum(d.chunk_count for d in index.documents())


def test_uploads_are_sources_of_their_own(knowledge_base, tmp_path: Path) -> None:
    upload = tmp_path / "000-tides.md"
    upload.write_text("Uploaded note on harbour tides.\n")
    report = ingest_uploads(knowledge_base, [(upload, "tides.md")])
    assert re.fullmatch(r"upload:[0-9a-f]{12}/tides\.md", report.results[0].path)
    assert report.results[0].status == "added"
    doc = knowledge_base.index.documents()[0]
    assert doc.sources == (report.results[0].path,)
    assert doc.title == "tides"


def test_missing_path_is_a_usage_error(knowledge_base, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="no such file"):
        ingest_paths(knowledge_base, [tmp_path / "nope"])


def test_a_hanging_file_times_out_and_the_next_one_still_works(tmp_path: Path) -> None:
    fifo = tmp_path / "hangs.txt"
    os.mkfifo(fifo)  # opening it for reading blocks until a writer comes: a hang
    good = tmp_path / "good.txt"
    good.write_text("Fine text.\n")
    with Extractor(timeout=3) as extractor:
        with pytest.raises(ExtractionError, match="timed out"):
            extractor.extract(fifo)
        assert extractor.extract(good).pages[0].text.strip() == "Fine text."


def test_same_content_in_later_batches_is_embedded_once(knowledge_base, tmp_path: Path) -> None:
    knowledge_base.settings = dataclasses.replace(knowledge_base.settings, write_batch_size=1)
    root = tmp_path / "dups"
    root.mkdir()
    for name in ("a.txt", "m.txt", "z.txt"):
        (root / name).write_text("Lock gates open two hours before high water.\n")
    (root / "b.txt").write_text("Pilots board at the outer buoy.\n")

    report = ingest_paths(knowledge_base, [root])

    assert all(label.startswith("added") for label in statuses(report).values())
    assert report.embedded_chunks == 2
    assert knowledge_base.index.count() == 2
    doc = knowledge_base.index.find_by_source(str((root / "a.txt").resolve()))[0]
    assert {Path(s).name for s in doc.sources} == {"a.txt", "m.txt", "z.txt"}


def test_an_extractor_that_dies_is_a_crash_of_that_file(tmp_path: Path) -> None:
    good = tmp_path / "good.txt"
    good.write_text("Fine text.\n")
    with Extractor(timeout=10) as extractor:
        extractor._start = lambda: subprocess.Popen(  # type: ignore[method-assign]
            [sys.executable, "-c", "import sys; sys.exit(3)"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        with pytest.raises(ExtractionError, match="crashed"):
            extractor.extract(good)


def test_a_failing_extraction_thread_stops_the_run_instead_of_hanging(
    knowledge_base, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self, path):  # type: ignore[no-untyped-def]
        raise RuntimeError("disk vanished")

    monkeypatch.setattr(Extractor, "extract", broken)
    with pytest.raises(RuntimeError, match="disk vanished"):
        ingest_paths(knowledge_base, [corpus])
    assert knowledge_base.index.count() == 0


@pytest.mark.skipif(
    resource.getrlimit(resource.RLIMIT_NOFILE)[0] < 1200, reason="open-file limit below 1200"
)
def test_extraction_works_in_a_process_with_many_open_files(tmp_path: Path) -> None:
    good = tmp_path / "good.txt"
    good.write_text("Fine text.\n")
    held = [open(os.devnull) for _ in range(1100)]  # noqa: SIM115 - descriptors past 1023
    try:
        with Extractor(timeout=10) as extractor:
            assert extractor.extract(good).pages[0].text.strip() == "Fine text."
    finally:
        for fh in held:
            fh.close()

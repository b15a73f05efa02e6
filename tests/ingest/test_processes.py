"""Work split across processes: embedded Chroma shared by processes (an ingest in one process
is searchable in another), the extraction child's time limit that grows with page count, and a
child that never outlives its parent nor runs on past its limit."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from ingest.extractor import CHILD_GRACE, Extractor, _receive, _send
from kb.errors import ExtractionError
from kb.extraction import DEFAULT_LIMITS
from kb.service import open_kb
from standin.pdfs import make_pdf, pdf_bytes
from tests.processes import kb_env

# A dense page that pypdf needs a few milliseconds to read: 600 of them take seconds.
DENSE_PAGE = "Tide tables list high and low water for every harbour on the coast. " * 50
PAGES = 600


def test_a_running_reader_sees_what_another_process_ingested(
    settings, embedder, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "docs"
    root.mkdir()
    (root / "tides.txt").write_text("Spring tides in the harbour reach four metres.\n")
    reader = open_kb(settings, embedder=embedder)
    try:
        from ingest import ingest_paths

        ingest_paths(reader, [root])
        assert reader.retriever.search("harbour tides", k=1, mode="dense")[0].document.title == (
            "tides"
        )
        (root / "fog.txt").write_text("Fog horns sound every thirty seconds in dense fog.\n")
        env = kb_env(settings)
        done = subprocess.run(
            [sys.executable, "-m", "kb.cli", "ingest", str(root)],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr

        hits = reader.retriever.search("how often does the fog horn sound", k=1, mode="dense")
        assert hits[0].document.title == "fog"
    finally:
        reader.close()


@pytest.fixture(scope="module")
def long_pdf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real 600-page PDF (one fpdf2 page repeated by pypdf): seconds to extract, when
    counting its pages takes a fraction of a second."""
    from pypdf import PdfReader, PdfWriter

    page = PdfReader(io.BytesIO(pdf_bytes([DENSE_PAGE]))).pages[0]
    writer = PdfWriter()
    for _ in range(PAGES):
        writer.add_page(page)
    path = tmp_path_factory.mktemp("long") / "filing.pdf"
    with path.open("wb") as handle:
        writer.write(handle)
    return path


@contextlib.contextmanager
def warm_extractor(tmp_path: Path, base: float, per_page: float) -> Iterator[Extractor]:
    """An extractor whose child has started and imported pypdf (with time to spare), so that
    the tiny `base` that follows measures the file alone."""
    with Extractor(timeout=60, page_timeout=per_page) as extractor:
        assert extractor.extract(make_pdf(tmp_path / "warm-up.pdf", ["Warm-up."])).page_count == 1
        extractor.timeout = base
        yield extractor


def test_a_long_pdf_gets_time_per_page_beyond_the_base(tmp_path: Path, long_pdf: Path) -> None:
    # 0.5 s is far too little for 600 pages (the next test shows it), but ample for the page
    # count; 0.5 + 0.1 x 600 = 60.5 s is ample for the pages.
    with warm_extractor(tmp_path, base=0.5, per_page=0.1) as extractor:
        result = extractor.extract(long_pdf)
    assert result.page_count == PAGES
    assert "high and low water" in result.pages[-1].text


@pytest.mark.parametrize(
    ("base", "per_page", "limit"),
    [
        (1.0, 0.0, "1s (1s + 0s × 600 pages)"),
        # well under the 1 s the case above proves too little, on a fast machine too
        (0.5, 0.0005, "0.8s (0.5s + 0.0005s × 600 pages)"),
    ],
)
def test_a_long_pdf_beyond_base_plus_its_pages_times_out(
    tmp_path: Path, long_pdf: Path, base: float, per_page: float, limit: str
) -> None:
    good = tmp_path / "good.txt"
    good.write_text("Fine text.\n")
    with warm_extractor(tmp_path, base=base, per_page=per_page) as extractor:
        with pytest.raises(ExtractionError) as caught:
            extractor.extract(long_pdf)
        assert caught.value.reason == "timed out"
        assert caught.value.message == f"timed out: extraction took longer than {limit}"
        assert extractor.extract(good).pages[0].text.strip() == "Fine text."


def test_a_hang_before_the_page_count_is_stopped_at_the_base(tmp_path: Path) -> None:
    fifo = tmp_path / "hangs.pdf"
    os.mkfifo(fifo)  # opening it for reading blocks until a writer comes: a hang
    good = tmp_path / "good.txt"
    good.write_text("Fine text.\n")
    with Extractor(timeout=2, page_timeout=1000) as extractor:
        with pytest.raises(ExtractionError) as caught:
            extractor.extract(fifo)
        assert caught.value.message == "timed out: extraction took longer than 2s"
        assert extractor.extract(good).pages[0].text.strip() == "Fine text."


def test_a_page_count_and_result_that_arrive_together_are_both_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ingest.extractor

    receive = ingest.extractor._receive

    def late(stream):  # type: ignore[no-untyped-def]
        time.sleep(0.5)  # by now the child has sent ("pages", 2) and then its result
        return receive(stream)

    monkeypatch.setattr(ingest.extractor, "_receive", late)
    with Extractor(timeout=10, page_timeout=1) as extractor:
        result = extractor.extract(make_pdf(tmp_path / "two.pdf", ["One.", "Two."]))
    assert [p.text.strip() for p in result.pages] == ["One.", "Two."]


def gone(pid: int) -> bool:
    """No such process, or only its exit status left (a zombie its new parent has not reaped)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_gone(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if gone(pid):
            return True
        time.sleep(0.1)
    return gone(pid)


@contextlib.contextmanager
def killed_at_exit(*pids: int) -> Iterator[None]:
    try:
        yield
    finally:
        for pid in pids:
            with contextlib.suppress(psutil.NoSuchProcess):
                psutil.Process(pid).kill()


def test_a_killed_ingest_leaves_no_extractor_running(settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from pypdf import PdfReader, PdfWriter

    root = tmp_path / "docs"
    root.mkdir()
    page = PdfReader(io.BytesIO(pdf_bytes([DENSE_PAGE]))).pages[0]
    writer = PdfWriter()
    for _ in range(8000):  # half a minute or more of reading: far longer than we wait below
        writer.add_page(page)
    with (root / "almanac.pdf").open("wb") as handle:
        writer.write(handle)
    env = kb_env(settings)
    ingest = subprocess.Popen(
        [sys.executable, "-m", "kb.cli", "ingest", str(root)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    with killed_at_exit(ingest.pid):
        child = None
        deadline = time.monotonic() + 240  # the model loads first
        while child is None and time.monotonic() < deadline and ingest.poll() is None:
            for proc in psutil.Process(ingest.pid).children():
                with contextlib.suppress(psutil.NoSuchProcess):
                    busy = sum(proc.cpu_times()[:2]) > 1.5  # past its imports, reading pages
                    if "ingest.extractor" in " ".join(proc.cmdline()) and busy:
                        child = proc
            time.sleep(0.1)
        assert child is not None, "the extractor never started"
        with killed_at_exit(child.pid):
            os.kill(ingest.pid, signal.SIGKILL)
            ingest.wait(10)
            assert wait_gone(child.pid, 5), "the extractor outlived its killed parent"


def test_a_child_whose_parent_is_gone_exits_by_itself(tmp_path: Path) -> None:
    """Without the kernel's help (not Linux): the child sees another parent than the one it
    was told of, as after its parent died, and exits."""
    stranger = subprocess.Popen([sys.executable, "-c", "pass"])
    stranger.wait()
    child = subprocess.Popen(
        [sys.executable, "-m", "ingest.extractor", str(stranger.pid)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,  # runpy warns that the package imported the module
    )
    with killed_at_exit(child.pid):
        assert child.wait(30) == 1


def test_a_child_left_with_a_hanging_file_exits_past_its_limit(tmp_path: Path) -> None:
    """A parent that never kills its child (stuck, or gone without a word): the child gives up
    by itself a little after the limit the parent sent with the file."""
    fifo = tmp_path / "hangs.txt"
    os.mkfifo(fifo)  # opening it for reading blocks until a writer comes: a hang
    child = subprocess.Popen(
        [sys.executable, "-m", "ingest.extractor", str(os.getpid())],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert child.stdin is not None and child.stdout is not None
    with killed_at_exit(child.pid):
        good = tmp_path / "good.txt"
        good.write_text("Fine text.\n")
        _send(child.stdin, (str(good), 30.0, 0.0, DEFAULT_LIMITS))
        assert _receive(child.stdout)[0] == "done"  # the child is up and well
        sent = time.monotonic()
        _send(child.stdin, (str(fifo), 1.0, 0.0, DEFAULT_LIMITS))
        assert child.wait(30) == 1
        waited = time.monotonic() - sent
        assert 1.0 + CHILD_GRACE - 0.5 < waited < 1.0 + CHILD_GRACE + 10

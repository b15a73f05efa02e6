"""The kill -9 drill: `kb ingest` killed at many points of a run, offline (the local store) and
online (the Anthropic stand-in), then run again to the end and compared with a clean run.

Each point starts `kb ingest` as a process of its own in a fresh data dir, kills it with
SIGKILL (the `kb` process alone, as `kill -9 PID` does: its extraction child must die by
itself) when the run reaches a stage (a local copy kept, a part stored, a document committed,
a time into the run), and checks that nothing it started is left running. Then `kb ingest` runs
again to the end (in this process, with the session's model: the same code without loading the
model once more), and the knowledge base must be the clean run's: the same documents, sources,
parts and chunks, every file a record references present, `kb files gc --dry-run` (grace 0)
finding nothing but what the killed run left and no record uses, nothing of this knowledge
base left unreferenced after `kb files gc`, and online exactly one upload of each part over
the killed run and the rerun (the rerun finds the killed run's uploads by name).

Online, a point that kills on the n-th upload kills from inside the stand-in, after it stored
the file and before it answers: the upload happened, and the killed run never learnt its id.
A point the run ended before is a failure, not a pass: the drill proves nothing there.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pty
import re
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest

from kb.cli import main
from kb.files import owns
from kb.service import open_kb
from kb.settings import Settings
from standin.pdfs import make_pdf
from standin.server import StandIn, serve
from standin.store import State, StoredFile

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]  # about two minutes a mode

ROOT = Path(__file__).resolve().parents[2]
PDFS = 4  # 8 pages each: three page windows (1-3, 4-6, 7-8), so three stored parts
TEXTS = ("note-0.txt", "note-1.txt", "readme.md")
DOCUMENTS = PDFS + len(TEXTS)  # the duplicate is a second source of note-0.txt
PARTS = PDFS * 3 + len(TEXTS)
BAD = 2  # broken.pdf fails, empty.txt is skipped: both reported before any document
ENV = {
    "HF_HUB_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "KB_WRITE_BATCH_SIZE": "24",  # a batch every document or two: commits spread over the run
    "TQDM_MININTERVAL": "0",  # the progress bar shows every file done
}
KILLED_TIMEOUT = 240.0  # seconds a killed run may take to reach its point (the model loads)


def make_corpus(root: Path) -> Path:
    """Ten files: four 8-page PDFs, two text files and a Markdown file, a copy of one text
    file under another name, a malformed PDF and an empty file (named to come first)."""
    root.mkdir()
    (root / "0-broken.pdf").write_bytes(b"%PDF-1.4\nnot really a pdf\n")
    (root / "0-empty.txt").write_bytes(b"")
    topics = ("harbour tides", "boiler pressure", "orchard pruning", "bridge inspection")
    for i, topic in enumerate(topics):
        pages = [
            f"{topic.title()}, page {p}. "
            + f"Section {p} on {topic} describes routine {7 * p + i} step by step. " * 30
            for p in range(1, 9)
        ]
        make_pdf(root / f"manual-{i}.pdf", pages, title=f"Manual of {topic}")
    for i, name in enumerate(TEXTS):
        (root / name).write_text(f"# Note {i}\n\n" + f"Note {i} records reading {i} of 30. " * 120)
    (root / "z-copy-of-note-0.txt").write_bytes((root / "note-0.txt").read_bytes())
    return root


# The stand-in, recording every upload -------------------------------------------------------


@dataclass
class DrillState(State):
    """The stand-in's state, recording each stored upload's name under the phase it came in
    (`killed` or `rerun`); `kill_on_upload(n)` may kill the uploading process right after the
    n-th upload of a phase is stored, before the stand-in answers it."""

    phase: str = ""
    uploads: list[tuple[str, str]] = field(default_factory=list)  # (phase, filename)
    in_phase: int = 0  # uploads stored in this phase
    kill_on_upload: Callable[[int], None] | None = None

    def begin(self, phase: str) -> None:
        self.phase, self.in_phase = phase, 0

    def add_file(
        self, filename: str, mime_type: str, data: bytes, *, downloadable: bool = False
    ) -> StoredFile:
        stored = super().add_file(filename, mime_type, data, downloadable=downloadable)
        self.uploads.append((self.phase, filename))
        self.in_phase += 1
        if self.kill_on_upload is not None:
            self.kill_on_upload(self.in_phase)
        return stored


@dataclass
class Mode:
    online: bool
    state: DrillState | None = None
    base_url: str = ""

    def env(self, data_dir: Path) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KB_", "ANTHROPIC_"))}
        env.update(ENV, KB_DATA_DIR=str(data_dir))
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        if self.online:
            env.update(ANTHROPIC_API_KEY="sk-test", ANTHROPIC_BASE_URL=self.base_url)
        return env


@pytest.fixture(params=["offline", "online"])
def mode(request: pytest.FixtureRequest) -> Iterator[Mode]:
    if request.param == "offline":
        yield Mode(online=False)
        return
    state = DrillState()
    server, thread, base_url = serve(StandIn(state))
    try:
        yield Mode(online=True, state=state, base_url=base_url)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


# What a killed run has reached ----------------------------------------------------------------


@dataclass
class Seen:
    """What the test sees of a running ingest: seconds since it started and since it opened
    Chroma (after the model loaded), local copies kept, parts stored, files done (progress)."""

    elapsed: float
    ingesting: float | None
    copies: int
    stored: int
    done: int


@dataclass(frozen=True)
class Point:
    name: str
    reached: Callable[[Seen], bool] = lambda seen: False
    upload: int = 0  # online: kill inside the stand-in once this upload is stored
    local_upload: int = 0  # offline: kill once this many parts are in the local store
    fraction: float = 0.0  # kill this fraction of the clean run's time after Chroma opened


POINTS = [
    Point("starting (imports)", lambda s: s.elapsed >= 0.3),
    Point("opening Chroma", lambda s: s.ingesting is not None),
    Point("first local copy kept", lambda s: s.copies >= 1),
    Point("first part stored", upload=1, local_upload=1),
    Point("a third of the parts stored", upload=PARTS // 3, local_upload=PARTS // 3),
    Point("first document committed", lambda s: s.done >= BAD + 1),
    Point("half into the run", fraction=0.5),
    Point("two thirds of the parts stored", upload=2 * PARTS // 3, local_upload=2 * PARTS // 3),
    Point("half the documents committed", lambda s: s.done >= BAD + DOCUMENTS // 2),
    Point("all parts stored but one", upload=PARTS - 1, local_upload=PARTS - 1),
]


class Progress:
    """The ingest's progress bar, read from a pseudo-terminal given as its stderr (the bar
    shows only on a terminal): how many files are done."""

    def __init__(self) -> None:
        self.master, self.slave = pty.openpty()
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
        self.text = ""
        self.thread = threading.Thread(target=self._read, daemon=True)

    def start(self) -> None:
        os.close(self.slave)
        self.thread.start()

    def _read(self) -> None:
        with contextlib.suppress(OSError):  # EIO once the last writer is gone
            while block := os.read(self.master, 65536):
                self.text += block.decode(errors="replace")

    @property
    def done(self) -> int:
        counts = re.findall(r"(\d+)/\d+ \[", self.text)
        return int(counts[-1]) if counts else 0

    def close(self) -> None:
        self.thread.join(timeout=5)
        with contextlib.suppress(OSError):
            os.close(self.master)


def local_parts(data_dir: Path) -> int:
    return sum(1 for p in (data_dir / "files").glob("*/local-*") if not p.suffix)


def copies(data_dir: Path) -> set[str]:
    """The names in the local copies' store (documents' ids, and temp files)."""
    return {p.name for p in (data_dir / "blobs").glob("*/*")}


def in_group(pgid: int) -> list[int]:
    """Live processes of process group `pgid` (zombies awaiting their reaper are not)."""
    found = []
    for proc in psutil.process_iter(["status"]):
        with contextlib.suppress(psutil.Error, ProcessLookupError):
            if os.getpgid(proc.pid) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                found.append(proc.pid)
    return found


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@dataclass
class Killed:
    """How a killed run ended: when and where it was killed, and what it had started."""

    seconds: float
    seen: Seen
    children: list[int]


def kill_ingest(mode: Mode, corpus: Path, data_dir: Path, point: Point, clean: float) -> Killed:
    """Run `kb ingest` in its own process group until `point`, SIGKILL the `kb` process, and
    check that every process it started is gone within a few seconds."""
    progress = Progress()
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "kb.cli", "ingest", str(corpus)],
        env=mode.env(data_dir),
        cwd=data_dir.parent,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=progress.slave,
        start_new_session=True,  # its own group: whatever it starts is found by group
    )
    progress.start()
    children: list[int] = []
    killed = threading.Event()

    def kill() -> None:  # from this thread, or from the stand-in's
        killed.set()
        with contextlib.suppress(psutil.Error):
            children.extend(c.pid for c in psutil.Process(proc.pid).children(recursive=True))
        os.kill(proc.pid, signal.SIGKILL)

    if mode.state is not None:
        mode.state.begin("killed")
        if point.upload:
            mode.state.kill_on_upload = lambda n: kill() if n == point.upload else None
    try:
        ingesting: float | None = None
        seen = Seen(0.0, None, 0, 0, 0)
        while not killed.is_set():
            assert proc.poll() is None or killed.is_set(), (
                f"{point.name}: the ingest ended (exit {proc.returncode}) before the point"
            )
            now = time.monotonic()
            assert now - started < KILLED_TIMEOUT, f"{point.name}: never reached"
            if ingesting is None and (data_dir / "chroma").exists():
                ingesting = now
            seen = Seen(
                now - started,
                None if ingesting is None else now - ingesting,
                len(copies(data_dir)),
                local_parts(data_dir),
                progress.done,
            )
            if (
                point.reached(seen)
                or (not mode.online and point.local_upload and seen.stored >= point.local_upload)
                or (point.fraction and seen.ingesting and seen.ingesting >= point.fraction * clean)
            ):
                kill()
                break
            time.sleep(0.01)
        seconds = time.monotonic() - started
        assert proc.wait(10) == -signal.SIGKILL
        deadline = time.monotonic() + 5
        while (left := [p for p in children if not gone(p)] + in_group(proc.pid)) and (
            time.monotonic() < deadline
        ):
            time.sleep(0.1)
        assert not left, f"{point.name}: processes {left} outlived the killed ingest"
        return Killed(seconds, seen, children)
    finally:
        if mode.state is not None:
            mode.state.kill_on_upload = None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        progress.close()


# Running kb in this process, and what a knowledge base holds ----------------------------------


def run_kb(argv: list[str], capsys: pytest.CaptureFixture[str], expect: int = 0) -> Any:  # JSON out
    capsys.readouterr()
    code = main(argv)
    out = capsys.readouterr()
    assert code == expect, out.err
    return json.loads(out.out)


def use(monkeypatch: pytest.MonkeyPatch, mode: Mode, data_dir: Path, **extra: str) -> None:
    for key in [k for k in os.environ if k.startswith(("KB_", "ANTHROPIC_"))]:
        monkeypatch.delenv(key)
    for key, value in {**mode.env(data_dir), **extra}.items():
        if key.startswith(("KB_", "ANTHROPIC_")):
            monkeypatch.setenv(key, value)


@dataclass
class Holdings:
    """A knowledge base as the drill compares it."""

    documents: dict[str, Any]  # id: what must equal the clean run's
    chunks: dict[str, list[tuple[str, str, int, int]]]  # id: (chunk id, text, pages)
    orphan_chunks: int  # chunks of no record
    contents: dict[tuple[str, int], bytes]  # (document, part): its stored file's bytes
    referenced: set[str]
    stored: set[str]  # this knowledge base's files in the store
    kb_id: str


def holdings(mode: Mode, data_dir: Path, embedder: Any) -> Holdings:
    settings = Settings.from_env()
    assert settings.data_dir == data_dir
    with open_kb(settings, embedder=embedder) as kb:
        docs = kb.index.documents()
        documents = {
            d.id: (
                d.title,
                d.kind,
                sorted(d.sources),
                d.page_count,
                d.chunk_count,
                d.parts,
                [(f.part, f.page_start, f.page_end) for f in d.files],
                d.file_store,
                d.notes,
            )
            for d in docs
        }
        chunks = {
            d.id: [(c.id, c.text, c.page_start, c.page_end) for c in kb.index.chunks(d.id)]
            for d in docs
        }
        orphans = kb.index.chunk_count() - sum(len(c) for c in chunks.values())
        referenced = kb.referenced_files()
        stored = {s.file_id for s in kb.files.list()}
        missing = {f for f in referenced if not kb.files.exists(f)}
        assert not missing, f"records reference files that are not in the store: {missing}"
        kb_id = kb.index.kb_id
    files = [(d.id, f.part, f.file_id) for d in docs for f in d.files]
    if mode.state is None:
        store = data_dir / "files" / "default"
        contents = {(doc, part): (store / file_id).read_bytes() for doc, part, file_id in files}
    else:  # what the stand-in holds, not what kb lists
        remote = {f.id for f in mode.state.files.values() if owns("default", kb_id, f.filename)}
        assert remote == stored
        contents = {(doc, part): mode.state.files[file_id].data for doc, part, file_id in files}
    return Holdings(documents, chunks, orphans, contents, referenced, stored, kb_id)


def local_store_names(data_dir: Path) -> set[str]:
    return {p.name for p in (data_dir / "files").glob("*/*")}


def local_leftovers(data_dir: Path) -> set[str]:
    """Temp files, and `.meta` files without their file, in the local store."""
    names = local_store_names(data_dir)
    return {
        n
        for n in names
        if n.startswith(".tmp-") or (n.endswith(".meta") and n.removesuffix(".meta") not in names)
    }


# The drill ------------------------------------------------------------------------------------


def test_kill_drill(
    mode: Mode,
    tmp_path: Path,
    embedder: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    corpus = make_corpus(tmp_path / "corpus")
    monkeypatch.setattr("kb.service.load_embedder", lambda settings, backend=None: embedder)
    monkeypatch.chdir(tmp_path)  # no stray .env

    clean_dir = tmp_path / "clean"
    use(monkeypatch, mode, clean_dir)
    if mode.state is not None:
        mode.state.begin("clean")
    clean_run = run_kb(["ingest", str(corpus), "--json"], capsys, expect=1)
    assert clean_run["counts"] == {"added": DOCUMENTS + 1, "failed": 1, "skipped": 1}
    clean = holdings(mode, clean_dir, embedder)
    assert len(clean.documents) == DOCUMENTS
    assert sum(len(d[5]) for d in clean.documents.values()) == PARTS
    assert clean.orphan_chunks == 0
    assert clean.stored == clean.referenced
    bad = {r["path"]: r for r in clean_run["results"] if r["status"] in ("failed", "skipped")}
    if mode.state is not None:
        assert Counter(p for p, _ in mode.state.uploads) == {"clean": PARTS}

    report = []
    for number, point in enumerate(POINTS):
        data_dir = tmp_path / f"point-{number}"
        data_dir.mkdir()
        where = f"killed at {point.name!r}"
        killed = kill_ingest(mode, corpus, data_dir, point, clean_run["seconds"])
        killed_copies = copies(data_dir)

        # the rerun: to the end, every file added or found unchanged, the bad ones as before
        use(monkeypatch, mode, data_dir)
        if mode.state is not None:
            mode.state.begin("rerun")
        rerun = run_kb(["ingest", str(corpus), "--json"], capsys, expect=1)
        for result in rerun["results"]:
            if result["path"] in bad:
                assert result == bad[result["path"]], where
            else:
                assert result["status"] in ("added", "unchanged"), (where, result)
        extractors = [
            c for c in psutil.Process().children() if "ingest.extractor" in " ".join(c.cmdline())
        ]
        assert not extractors, "the rerun left its extraction child running"

        # the clean run's documents, sources, parts and chunks; every referenced file present
        got = holdings(mode, data_dir, embedder)
        assert got.documents == clean.documents, where
        assert got.chunks == clean.chunks, where
        assert got.orphan_chunks == 0, where
        assert got.contents == clean.contents, where
        left_copies = copies(data_dir) - set(got.documents)
        assert left_copies <= {c for c in killed_copies if c.startswith(".tmp-")}, where

        # no part uploaded twice: the rerun found what the killed run had uploaded
        uploads: Counter[str] = Counter()
        killed_uploads = 0
        prefix = f"kb-default-{got.kb_id}-"
        if mode.state is not None:
            mine = [(phase, name) for phase, name in mode.state.uploads if name.startswith(prefix)]
            assert {phase for phase, _ in mine} <= {"killed", "rerun"}, where
            killed_uploads = sum(phase == "killed" for phase, _ in mine)
            uploads = Counter(re.sub(r"^(.*?-p\d+(-\d+)?)-.*$", r"\1", name) for _, name in mine)
            assert len(uploads) == PARTS and set(uploads.values()) == {1}, (where, uploads)

        # gc --dry-run, grace 0: nothing but what the killed run left and no record uses
        use(monkeypatch, mode, data_dir, KB_GC_GRACE_SECONDS="0")
        leftovers = local_leftovers(data_dir)
        dry = run_kb(["files", "gc", "--dry-run", "--json"], capsys)
        unreferenced = got.stored - got.referenced
        assert {f["file_id"] for f in dry["deleted"]} == unreferenced, where
        if mode.state is not None:  # each an upload of the killed run (one per part, above)
            assert unreferenced <= {
                f.id for f in mode.state.files.values() if f.filename.startswith(prefix)
            }
        assert dry["too_new"] == [] and dry["old_names"] == [], where
        assert set(dry["leftovers"]) == leftovers, where
        assert set(dry["copies"]) == left_copies, where

        # gc: every referenced file stays, nothing unreferenced of this knowledge base remains
        others = {} if mode.state is None else dict(mode.state.files)
        run_kb(["files", "gc", "--json"], capsys)
        after = holdings(mode, data_dir, embedder)
        assert after.documents == clean.documents and after.contents == clean.contents, where
        assert after.stored == after.referenced, where
        assert copies(data_dir) == set(after.documents), where
        if mode.state is None:
            assert local_store_names(data_dir) == {
                name for f in after.referenced for name in (f, f"{f}.meta")
            }, where
        else:  # and other knowledge bases' files (the clean run's, earlier points') untouched
            kept = {i for i, f in others.items() if not f.filename.startswith(prefix)}
            assert kept <= set(mode.state.files), where

        report.append(
            f"{point.name:31} killed at {killed.seconds:4.1f}s: copies {len(killed_copies)}, "
            f"parts {killed_uploads or killed.seen.stored}, done {killed.seen.done}, "
            f"children {len(killed.children)}; rerun {dict(sorted(rerun['counts'].items()))}; "
            f"gc: {len(unreferenced)} unreferenced, {len(leftovers)} leftovers, "
            f"{len(left_copies)} copies"
        )
    with capsys.disabled():
        print(f"\nkill drill, {'online' if mode.online else 'offline'}: ", end="")
        print(f"clean run {clean_run['seconds']:.1f}s of ingest")
        print("\n".join(report))

"""Extraction in a child process, with a time limit per file that grows with its page count.

Every file gets `timeout` seconds; once the child reports a PDF's page count (before reading any
page), the limit becomes `timeout + page_timeout * pages`, counted from when the file was sent.
So a long healthy PDF finishes on a busy machine, while a file that hangs or crashes the parser
costs its own status (`failed: timed out ...`), never the run: the child is killed and a fresh
one takes the next file. The child is a plain `python -m ingest.extractor` (not
multiprocessing), so it never re-runs the caller's script.

The child never outlives its parent, and it keeps a time limit of its own: on Linux the kernel
kills it when the thread that started it ends (`PR_SET_PDEATHSIG`, so an `Extractor` is used
from the thread that starts it), and everywhere a watchdog thread in the child exits when its
parent is gone, or when one file runs `CHILD_GRACE` seconds past the limit the parent sent
with it (a parent that is stuck, or killed before it could kill the child).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

from kb.errors import ExtractionError
from kb.extraction import DEFAULT_LIMITS, Limits
from kb.types import Extraction

_HEADER = struct.Struct("!I")
CHILD_GRACE = 3.0  # seconds past the parent's limit before the child gives up by itself
_WATCH_EVERY = 0.2  # seconds between the watchdog's looks at the parent and the clock
_PR_SET_PDEATHSIG = 1


def _send(stream: IO[bytes], value: Any) -> None:
    data = pickle.dumps(value)
    message = memoryview(_HEADER.pack(len(data)) + data)
    while message:  # an unbuffered pipe may take part of it
        message = message[stream.write(message) :]
    stream.flush()


def _read_exactly(stream: IO[bytes], size: int) -> bytes:
    data = b""
    while len(data) < size:
        block = stream.read(size - len(data))
        if not block:
            raise EOFError
        data += block
    return data


def _receive(stream: IO[bytes]) -> Any:
    (size,) = _HEADER.unpack(_read_exactly(stream, _HEADER.size))
    return pickle.loads(_read_exactly(stream, size))


def _die_with_parent() -> None:
    """Linux: have the kernel send SIGKILL when the parent (the thread that started this
    process) ends; elsewhere, or if the call fails, the watchdog alone does it."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


class _Watchdog(threading.Thread):
    """Exits the child when its parent is gone, or when the file at hand runs `CHILD_GRACE`
    seconds past the limit the parent gave it. `os._exit`: no clean-up that could hang."""

    def __init__(self, parent: int) -> None:
        super().__init__(name="kb-extract-watchdog", daemon=True)
        self.parent = parent
        self._lock = threading.Lock()
        self._since: float | None = None  # when the file at hand arrived
        self._timeout = self._page_timeout = self._limit = 0.0

    def begin(self, timeout: float, page_timeout: float) -> None:
        with self._lock:
            self._since = time.monotonic()
            self._timeout, self._page_timeout, self._limit = timeout, page_timeout, timeout

    def pages(self, count: int) -> None:
        """The file's page count is known: its limit grows as the parent's does."""
        with self._lock:
            self._limit = self._timeout + self._page_timeout * count

    def end(self) -> None:
        with self._lock:
            self._since = None

    def overdue(self) -> bool:
        with self._lock:
            since, limit = self._since, self._limit
        return since is not None and time.monotonic() - since > limit + CHILD_GRACE

    def run(self) -> None:
        while True:
            if os.getppid() != self.parent or self.overdue():
                os._exit(1)
            time.sleep(_WATCH_EVERY)


def serve(parent: int) -> None:
    """The child of process `parent`: read (path, timeout, page_timeout, limits) requests on
    stdin; per path, answer on stdout with ("pages", n) for a PDF, then one of
    ("done", Extraction) or ("failed", (reason, message))."""
    _die_with_parent()
    watchdog = _Watchdog(parent)
    watchdog.start()  # also exits at once if the parent died before this process was ready

    from kb.extraction import extract

    requests, replies = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # stray prints from parsers must not corrupt the channel

    def on_pages(count: int) -> None:
        watchdog.pages(count)
        _send(replies, ("pages", count))

    while True:
        try:
            path, timeout, page_timeout, limits = _receive(requests)
        except EOFError:
            return
        watchdog.begin(timeout, page_timeout)
        try:
            _send(replies, ("done", extract(Path(path), on_pages, limits)))
        except ExtractionError as exc:
            _send(replies, ("failed", (exc.reason, exc.message)))
        except Exception as exc:  # any parser failure is this file's failure
            _send(replies, ("failed", ("unreadable", f"unreadable: {type(exc).__name__}: {exc}")))
        finally:
            watchdog.end()


class Extractor:
    """Extracts files one at a time in a child process.

    `timeout`: seconds any file may take; `page_timeout`: seconds added per page of a PDF;
    `limits`: the characters kept from a page and a file.
    """

    def __init__(
        self, timeout: float, page_timeout: float = 0.0, limits: Limits = DEFAULT_LIMITS
    ) -> None:
        self.timeout = timeout
        self.page_timeout = page_timeout
        self.limits = limits
        self._proc: subprocess.Popen[bytes] | None = None

    def _start(self) -> subprocess.Popen[bytes]:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "ingest.extractor", str(os.getpid())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            bufsize=0,  # unbuffered: a reply read ahead into a buffer would hide it from poll()
        )
        return self._proc

    def _kill(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            for stream in (self._proc.stdin, self._proc.stdout):
                if stream is not None:
                    with contextlib.suppress(OSError):  # a dead child's pipe
                        stream.close()
        self._proc = None

    def extract(self, path: Path) -> Extraction:
        proc = self._proc or self._start()
        assert proc.stdin is not None and proc.stdout is not None
        try:
            _send(proc.stdin, (str(path), self.timeout, self.page_timeout, self.limits))
            sent = time.monotonic()
            limit, how = self.timeout, ""
            waiting = select.poll()  # not select(): it fails for descriptors past 1023
            waiting.register(proc.stdout, select.POLLIN)
            while True:
                left = sent + limit - time.monotonic()
                if left <= 0 or not waiting.poll(left * 1000):
                    self._kill()
                    raise ExtractionError(
                        "timed out", f"timed out: extraction took longer than {limit:g}s{how}"
                    )
                kind, value = _receive(proc.stdout)
                if kind != "pages":
                    break
                limit = self.timeout + self.page_timeout * value
                unit = "page" if value == 1 else "pages"
                how = f" ({self.timeout:g}s + {self.page_timeout:g}s × {value} {unit})"
        except (EOFError, OSError, pickle.UnpicklingError):
            self._kill()
            raise ExtractionError("crashed", "the extractor crashed on this file") from None
        if kind == "done":
            return value
        reason, message = value
        raise ExtractionError(reason, message)

    def close(self) -> None:
        if self._proc is None:
            return
        assert self._proc.stdin is not None
        with contextlib.suppress(OSError):  # the child may be gone already
            self._proc.stdin.close()
        try:
            self._proc.wait(5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        self._proc = None

    def __enter__(self) -> Extractor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


if __name__ == "__main__":
    serve(int(sys.argv[1]) if len(sys.argv) > 1 else os.getppid())

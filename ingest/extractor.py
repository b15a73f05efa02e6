"""Extraction in a child process, with a time limit per file that grows with its page count.

Every file gets `timeout` seconds; once the child reports a PDF's page count (before reading any
page), the limit becomes `timeout + page_timeout * pages`, counted from when the file was sent.
So a long healthy PDF finishes on a busy machine, while a file that hangs or crashes the parser
costs its own status (`failed: timed out ...`), never the run: the child is killed and a fresh
one takes the next file. The child is a plain `python -m ingest.extractor` (not
multiprocessing), so it never re-runs the caller's script.
"""

from __future__ import annotations

import contextlib
import pickle
import select
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

from kb.errors import ExtractionError
from kb.extraction import DEFAULT_LIMITS, Limits
from kb.types import Extraction

_HEADER = struct.Struct("!I")


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


def serve() -> None:
    """The child: read (path, limits) on stdin; per path, answer on stdout with ("pages", n) for
    a PDF, then one of ("done", Extraction) or ("failed", (reason, message))."""
    from kb.extraction import extract

    requests, replies = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # stray prints from parsers must not corrupt the channel

    def on_pages(count: int) -> None:
        _send(replies, ("pages", count))

    while True:
        try:
            path, limits = _receive(requests)
        except EOFError:
            return
        try:
            _send(replies, ("done", extract(Path(path), on_pages, limits)))
        except ExtractionError as exc:
            _send(replies, ("failed", (exc.reason, exc.message)))
        except Exception as exc:  # any parser failure is this file's failure
            _send(replies, ("failed", ("unreadable", f"unreadable: {type(exc).__name__}: {exc}")))


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
            [sys.executable, "-m", "ingest.extractor"],
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
            _send(proc.stdin, (str(path), self.limits))
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
    serve()

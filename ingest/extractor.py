"""Extraction in a child process, with a time limit per file.

A file that hangs or crashes the PDF parser costs its own status (`failed: timed out ...`),
never the run: the child is killed and a fresh one takes the next file.
"""

from __future__ import annotations

import multiprocessing as mp
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from kb.errors import ExtractionError
from kb.types import Extraction


def _serve(conn: Connection) -> None:
    from kb.extraction import extract

    while True:
        try:
            path = conn.recv()
        except EOFError:
            return
        try:
            conn.send((True, extract(Path(path))))
        except ExtractionError as exc:
            conn.send((False, (exc.reason, exc.message)))
        except Exception as exc:  # noqa: BLE001 - any parser failure is this file's failure
            conn.send((False, ("unreadable", f"{type(exc).__name__}: {exc}")))


class Extractor:
    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._ctx = mp.get_context("spawn")
        self._proc: Any = None
        self._conn: Connection | None = None

    def _start(self) -> Connection:
        parent, child = self._ctx.Pipe()
        self._proc = self._ctx.Process(target=_serve, args=(child,), daemon=True)
        self._proc.start()
        child.close()
        self._conn = parent
        return parent

    def _kill(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.join(5)
        if self._conn is not None:
            self._conn.close()
        self._proc = self._conn = None

    def extract(self, path: Path) -> Extraction:
        conn = self._conn or self._start()
        conn.send(str(path))
        try:
            if not conn.poll(self.timeout):
                self._kill()
                raise ExtractionError(
                    "timed out", f"timed out: extraction took longer than {self.timeout:g}s"
                )
            ok, value = conn.recv()
        except (EOFError, OSError):
            self._kill()
            raise ExtractionError("crashed", "the extractor crashed on this file") from None
        if ok:
            return value  # type: ignore[no-any-return]
        reason, message = value
        raise ExtractionError(reason, message)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        if self._proc is not None:
            self._proc.join(5)
            if self._proc.is_alive():
                self._proc.kill()
        self._proc = self._conn = None

    def __enter__(self) -> Extractor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

"""Claims: one writer at a time per key (a document, an upload), across the threads and the
processes of this machine.

A claim is a `threading.RLock` for the threads of this process and an exclusive `fcntl.flock`
on `<root>/<key>.lock` for the other processes; the kernel drops the lock with the process, so
a killed writer never leaves a key claimed. Claims are reentrant within a thread, and several
keys are taken in sorted order (`hold_all`), so two writers never wait on each other.

The lock file also holds a few bytes of state that only a holder reads or writes
(`Claim.read`, `Claim.write`): a document's epoch (`kb.index`), the file an upload stored
(`kb.uploads`). Lock files are never deleted: removing one that another process has open would
let two holders in at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

_STATE_BYTES = 4096


class Claim:
    """A held claim: the state kept in its lock file."""

    def __init__(self, fd: int | None, memory: dict[str, str], key: str) -> None:
        self._fd = fd
        self._memory = memory  # without a lock file (no root), the state is kept here
        self._key = key

    def read(self) -> str:
        if self._fd is None:
            return self._memory.get(self._key, "")
        return os.pread(self._fd, _STATE_BYTES, 0).decode("utf-8", errors="replace")

    def write(self, state: str) -> None:
        if self._fd is None:
            self._memory[self._key] = state
            return
        data = state.encode()
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, data, 0)


class _Entry:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.depth = 0  # how deep the owning thread holds it
        self.claim: Claim | None = None
        self.users = 0  # threads holding or waiting: the entry goes when none are left


_entries: dict[tuple[str, str], _Entry] = {}  # (root, key): shared by every `Claims` here
_entries_lock = threading.Lock()


class Claims:
    """Claims on keys under `root` (a folder of lock files); with no root, threads only."""

    def __init__(self, root: Path | None) -> None:
        self.root = root
        self._memory: dict[str, str] = {}

    @contextlib.contextmanager
    def hold(self, key: str) -> Iterator[Claim]:
        """Hold the claim on `key` (a file-name-safe string) for the `with` block."""
        ident = (str(self.root), key)
        with _entries_lock:
            entry = _entries.setdefault(ident, _Entry())
            entry.users += 1
        try:
            with entry.lock:
                if entry.depth == 0:
                    entry.claim = self._take(key)
                entry.depth += 1
                try:
                    assert entry.claim is not None
                    yield entry.claim
                finally:
                    entry.depth -= 1
                    if entry.depth == 0:
                        claim, entry.claim = entry.claim, None
                        if claim is not None and claim._fd is not None:
                            os.close(claim._fd)  # releases the flock
        finally:
            with _entries_lock:
                entry.users -= 1
                if entry.users == 0:
                    del _entries[ident]

    @contextlib.contextmanager
    def hold_all(self, keys: Iterable[str]) -> Iterator[dict[str, Claim]]:
        """Hold the claims on every key, taken in sorted order."""
        with contextlib.ExitStack() as stack:
            yield {key: stack.enter_context(self.hold(key)) for key in sorted(set(keys))}

    def _take(self, key: str) -> Claim:
        if self.root is None:
            return Claim(None, self._memory, key)
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / f"{key}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        return Claim(fd, self._memory, key)

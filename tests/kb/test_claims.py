"""Claims: one holder per key across threads and processes, reentrant, with state."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

from kb.claims import Claims

TRY_LOCK = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
except BlockingIOError:
    print("held")
else:
    print("free", os.pread(fd, 100, 0).decode())
"""


def other_process_sees(path: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-c", TRY_LOCK, str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_a_claim_keeps_other_processes_and_threads_out_until_released(tmp_path: Path) -> None:
    claims = Claims(tmp_path / "locks")
    taken = threading.Event()
    with claims.hold("doc") as claim:
        with claims.hold("doc") as again:  # reentrant in its thread
            again.write("epoch-1")
        assert claim.read() == "epoch-1"
        assert other_process_sees(tmp_path / "locks" / "doc.lock") == "held"

        def other_thread() -> None:
            with claims.hold("doc"):
                taken.set()

        thread = threading.Thread(target=other_thread)
        thread.start()
        assert not taken.wait(0.3)  # waits for this thread's claim
    assert taken.wait(10)
    thread.join()
    assert other_process_sees(tmp_path / "locks" / "doc.lock") == "free epoch-1"
    with Claims(tmp_path / "locks").hold_all(["b", "doc", "a"]) as held:
        assert sorted(held) == ["a", "b", "doc"] and held["doc"].read() == "epoch-1"

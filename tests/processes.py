"""What tests that run kb or Chroma as real processes share."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from kb.settings import Settings
from standin.loopback import free_port, wait_for_http


def kb_env(settings: Settings, **more: str) -> dict[str, str]:
    """The environment of a `kb` child process working on `settings`' data dir, offline."""
    env = {**os.environ, "KB_DATA_DIR": str(settings.data_dir), "HF_HUB_OFFLINE": "1"}
    env.pop("ANTHROPIC_API_KEY", None)
    env.update(more)
    return env


@contextmanager
def chroma_server(data: Path) -> Iterator[str]:
    """A `chroma run` on loopback over `data`, stopped after; its URL. Skips the test when the
    `chroma` command is not installed."""
    exe = shutil.which("chroma", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("the `chroma` command is not installed")
    port = free_port()
    proc = subprocess.Popen(
        [exe, "run", "--path", str(data), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/api/v2/heartbeat", proc, timeout=60)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)

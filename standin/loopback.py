"""Running ASGI apps and server processes on loopback, for tests and benchmarks."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from typing import Any

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_in_thread(
    app: Any, *, timeout: float = 60, **config: Any
) -> tuple[Any, threading.Thread, str]:
    """Start `app` under uvicorn on 127.0.0.1 in a thread; return (server, thread, base_url)
    once it accepts connections. Stop it with `server.should_exit = True; thread.join()`."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, **config))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"{type(app).__name__} did not start on port {port}")
        time.sleep(0.02)
    return server, thread, f"http://127.0.0.1:{port}"


def wait_for_http(url: str, proc: subprocess.Popen[Any], timeout: float) -> None:
    """Poll `url` until it answers 200; fail if `proc` exits or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"the server process exited with {proc.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer within {timeout:g}s")
        time.sleep(0.2)

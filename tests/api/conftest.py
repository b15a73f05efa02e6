"""The real app under uvicorn on loopback, and httpx clients against it."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from kb.settings import Settings
from standin.loopback import serve_in_thread

API_KEY = "test-key-123"
UPLOAD_LIMIT = 256 * 1024

CORPUS = {
    "volcanoes.md": "# Volcanoes\n\nMount Etna is an active stratovolcano on the east coast of "
    "Sicily. Its eruptions are frequent and it is one of the most active volcanoes in the world.",
    "bread.txt": "Sourdough bread is leavened by a culture of wild yeast and lactic acid "
    "bacteria. The starter is fed with flour and water every day.",
    "chess.md": "# Chess openings\n\nThe Sicilian Defence begins with 1.e4 c5 and is the most "
    "popular response to the king's pawn opening.",
}


@dataclass
class Running:
    base_url: str
    settings: Settings
    app: Any
    server: Any
    thread: threading.Thread

    def client(self, *, key: str | None = None, timeout: float = 60.0) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def serve(settings: Settings, embedder: Any, **kwargs: Any) -> Running:
    """Start `create_app(settings)` under uvicorn in a thread; return once it accepts."""
    from api.app import create_app

    app = create_app(settings, embedder=embedder, **kwargs)
    server, thread, url = serve_in_thread(app, log_level="warning", lifespan="on", access_log=False)
    return Running(url, settings, app, server, thread)


def is_upload(source: str, name: str) -> bool:
    """True for the source an upload of `name` gets: `upload:<12 hex digits>/<name>`."""
    return re.fullmatch(rf"upload:[0-9a-f]{{12}}/{re.escape(name)}", source) is not None


def source_of(client: httpx.Client, name: str) -> str:
    """The source of the one listed document uploaded as `name`."""
    listed = client.get("/v1/documents", params={"limit": 1000}).json()["documents"]
    [source] = [s for d in listed for s in d["sources"] if is_upload(s, name)]
    return source


def upload(client: httpx.Client, files: dict[str, bytes | str]) -> httpx.Response:
    parts = [
        ("files", (name, data.encode() if isinstance(data, str) else data))
        for name, data in files.items()
    ]
    return client.post("/v1/documents", files=parts)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Iterator[Running]:
    """An offline server without API keys, with the small corpus uploaded."""
    data_dir = tmp_path_factory.mktemp("api") / "kbdata"
    settings = Settings(data_dir=data_dir, max_upload_bytes=UPLOAD_LIMIT, max_k=10)
    running = serve(settings, embedder)
    try:
        with running.client() as client:
            response = upload(client, CORPUS)
            assert response.status_code == 200, response.text
        yield running
    finally:
        running.stop()


@pytest.fixture
def client(api: Running) -> Iterator[httpx.Client]:
    with api.client() as c:
        yield c

"""One slow request never stalls the others: searches and health checks during an ingest.

Behaviour, not speed: the ingest is held in progress while the other requests are made, so
the test shows the same thing on a fast machine and a loaded one."""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.api.conftest import Running, upload

_VOCABULARY = (
    "river mountain glacier harbour market castle forest desert island valley bridge "
    "tower engine signal orbit comet garden library theatre canal meadow quarry lantern "
    "compass"
)
WORDS = _VOCABULARY.split()


def corpus(n_files: int, words_per_file: int) -> dict[str, str]:
    rng = random.Random(7)
    return {
        f"bulk-{i:03d}.txt": " ".join(rng.choice(WORDS) for _ in range(words_per_file))
        for i in range(n_files)
    }


def test_requests_are_served_while_an_upload_is_ingested(
    api: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ingest is held mid-way (its first file's copy waits for the test), so it is
    certainly in progress, however fast or slow the machine: every search and health check
    must still be answered, and the upload completes once let go."""
    blobs = api.app.state.kb.blobs
    put_file = blobs.put_file
    entered, release = threading.Event(), threading.Event()

    def held(*args: Any, **kwargs: Any) -> Any:
        entered.set()
        assert release.wait(120), "the test never let the ingest go on"
        return put_file(*args, **kwargs)

    monkeypatch.setattr(blobs, "put_file", held)
    finished = threading.Event()
    outcome: dict[str, object] = {}

    def ingest() -> None:
        try:
            with api.client(timeout=300) as client:
                outcome["response"] = upload(client, corpus(30, 800))
        finally:
            finished.set()

    worker = threading.Thread(target=ingest)
    worker.start()
    try:
        assert entered.wait(120), "the ingest never started"

        def search(i: int) -> int:
            with api.client(timeout=60) as client:
                response = client.get(
                    "/v1/search",
                    params={"q": "volcano sicily", "k": 3, "mode": ("dense", "bm25")[i % 2]},
                )
                return response.status_code

        with api.client(timeout=60) as client:
            health = [client.get("/health").status_code for _ in range(5)]
        with ThreadPoolExecutor(4) as pool:
            statuses = list(pool.map(search, range(8)))
        during_ingest = not finished.is_set()
    finally:
        release.set()
        worker.join(timeout=300)

    assert health == [200] * 5
    assert statuses == [200] * 8
    assert during_ingest  # held: every answer above came while the upload was being ingested
    response = outcome["response"]
    assert isinstance(response, httpx.Response) and response.status_code == 200
    assert response.json()["counts"] == {"added": 30}

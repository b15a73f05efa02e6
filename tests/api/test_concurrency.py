"""One slow request never stalls the others: searches and health checks during an ingest."""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

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


def test_requests_are_served_while_an_upload_is_ingested(api: Running) -> None:
    finished = threading.Event()
    outcome: dict[str, object] = {}

    def ingest() -> None:
        with api.client(timeout=300) as client:
            outcome["response"] = upload(client, corpus(30, 800))
        finished.set()

    worker = threading.Thread(target=ingest)
    worker.start()
    time.sleep(0.5)  # the upload is being ingested now

    def search(i: int) -> tuple[int, float, bool]:
        with api.client() as client:
            started = time.perf_counter()
            response = client.get(
                "/v1/search",
                params={"q": "volcano sicily", "k": 3, "mode": ("dense", "bm25")[i % 2]},
            )
            return response.status_code, time.perf_counter() - started, finished.is_set()

    health: list[float] = []
    with api.client() as client:
        for _ in range(5):
            started = time.perf_counter()
            assert client.get("/health").status_code == 200
            health.append(time.perf_counter() - started)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(search, range(8)))
    during_ingest = not finished.is_set()
    worker.join(timeout=300)

    response = outcome["response"]
    assert isinstance(response, httpx.Response) and response.status_code == 200
    assert response.json()["counts"] == {"added": 30}
    assert all(status == 200 for status, _, _ in results)
    assert during_ingest, "the ingest finished too soon to show anything"
    assert any(not done for _, _, done in results), "no search finished during the ingest"
    assert max(health) < 1.0, f"health checks stalled behind the ingest: {health}"

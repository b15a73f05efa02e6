"""Races between processes: an API process and a separate writer (`kb ingest`, or a process
that keeps one knowledge base open) on the same data dir."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kb.settings import Settings
from tests.api.conftest import serve, upload
from tests.api.test_races import content, doc_id_of, together
from tests.processes import chroma_server, kb_env


@pytest.fixture(scope="module")
def chroma_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with chroma_server(tmp_path_factory.mktemp("chroma-races")) as url:
        yield url


@pytest.mark.server
def test_two_ingests_at_once_upload_each_content_once_and_keep_every_source(
    chroma_url: str, standin: Any, embedder: Any, tmp_path: Path
) -> None:
    """A `kb ingest` process and two API requests ingest the same 15 files at once (through
    a Chroma server, as concurrent writers should): each is uploaded to the Files API once,
    and each document keeps the path and both uploads as sources."""
    settings = Settings(
        data_dir=tmp_path / "kbdata",
        chroma_url=chroma_url,
        kb_name=f"races{uuid.uuid4().hex[:8]}",
        anthropic_api_key="sk-test",
        anthropic_base_url=standin.base_url,
    )
    folder = tmp_path / "docs"
    folder.mkdir()
    files = {folder / f"ledger-{i:02d}.txt": content()[0] for i in range(15)}
    for path, data in files.items():
        path.write_bytes(data)
    standin.inject("/v1/files", kind="slow", delay=0.3, times=10_000)  # uploads overlap
    api = serve(settings, embedder)
    ingest = subprocess.Popen(
        [sys.executable, "-m", "kb.cli", "ingest", str(folder), "--json"],
        env=kb_env(
            settings,
            KB_CHROMA_URL=chroma_url,
            KB_KB_NAME=settings.kb_name,
            ANTHROPIC_API_KEY="sk-test",
            ANTHROPIC_BASE_URL=standin.base_url,
        ),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not standin.requests("POST", "/v1/files"):  # the other process is uploading
            assert ingest.poll() is None, ingest.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.02)
        with api.client(timeout=300) as client:
            first, second = together(
                lambda: upload(client, {f"a-{p.name}": d for p, d in files.items()}),
                lambda: upload(client, {f"b-{p.name}": d for p, d in files.items()}),
            )
            out, err = ingest.communicate(timeout=300)
            assert ingest.returncode == 0, err
            assert json.loads(out)["counts"] == {"added": 15}
            for response in (first, second):
                assert response.status_code == 200, response.text
                assert response.json()["counts"] == {"added": 15}
            posted = standin.requests("POST", "/v1/files")
            assert len(posted) == len(files), "a content was uploaded more than once"
            uploaded = {r["doc_id"]: r["path"] for r in first.json()["results"]}
            again = {r["doc_id"]: r["path"] for r in second.json()["results"]}
            for path, data in files.items():
                doc = client.get(f"/v1/documents/{doc_id_of(data)}").json()
                assert sorted(doc["sources"]) == sorted(
                    [str(path.resolve()), uploaded[doc_id_of(data)], again[doc_id_of(data)]]
                )
                assert len(doc["file_ids"]) == 1
    finally:
        if ingest.poll() is None:
            ingest.kill()
            ingest.communicate()
        api.stop()


WRITER = """
import sys
from pathlib import Path

from ingest import ingest_paths
from kb.cli import open_kb_from_env

with open_kb_from_env() as kb:
    print("ready", flush=True)
    for line in sys.stdin:
        [result] = ingest_paths(kb, [Path(line.strip())]).results
        print(result.status, result.doc_id, flush=True)
"""


def test_an_api_process_sees_another_process_commit_after_committing_itself(
    tmp_path: Path, embedder: Any
) -> None:
    """Embedded Chroma: a writer process commits, then the API process commits (its own new
    generation) before it searches: the writer's document is still found by dense search, and
    requests in other threads never fail while the API process reopens Chroma for it."""
    settings = Settings(data_dir=tmp_path / "kbdata")
    api = serve(settings, embedder)
    seed, _ = content()
    # Not empty at first: embedded Chroma cannot read vectors another process wrote first
    # into a new collection until that process flushes them ("Nothing found on disk"), which
    # is not what this test is about.
    with api.client() as client:
        assert upload(client, {"seed.txt": seed}).json()["results"][0]["status"] == "added"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER],
        env=kb_env(settings),
        cwd=tmp_path,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    stop = threading.Event()
    failures: list[str] = []

    def keep_asking() -> None:
        with api.client() as client:
            while not stop.is_set():
                for response in (
                    client.get("/v1/search", params={"q": "harbour ledger", "mode": "dense"}),
                    client.get("/v1/documents"),
                ):
                    if response.status_code != 200:
                        failures.append(response.text)

    askers = [threading.Thread(target=keep_asking) for _ in range(2)]
    try:
        assert writer.stdin is not None and writer.stdout is not None
        assert writer.stdout.readline().strip() == "ready"
        for asker in askers:
            asker.start()
        with api.client() as client:
            for i in range(15):
                data, _ = content()
                path = tmp_path / f"writer-{i}.txt"
                path.write_bytes(data)
                writer.stdin.write(f"{path}\n")
                writer.stdin.flush()
                status, doc_id = writer.stdout.readline().split()
                assert status == "added" and doc_id == doc_id_of(data)

                # The API process commits in between: a record only (the seed's bytes under
                # another name), so that no chunk write of its own brings the vectors in.
                again = upload(client, {f"seed-{i}.txt": seed}).json()["results"][0]
                assert again["status"] == "added" and again["doc_id"] == doc_id_of(seed)

                hits = client.get(
                    "/v1/search", params={"q": data.decode(), "mode": "dense", "k": 5}
                ).json()["results"]
                assert doc_id in [h["document"]["id"] for h in hits], f"round {i}"
        assert not failures, failures[:3]
    finally:
        stop.set()
        for asker in askers:
            if asker.is_alive():
                asker.join(timeout=60)
        if writer.stdin is not None:
            writer.stdin.close()
        try:
            writer.wait(timeout=60)
        except subprocess.TimeoutExpired:
            writer.kill()
            writer.wait()
        api.stop()

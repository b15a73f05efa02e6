"""Nothing lost under races: many rounds of concurrent requests over HTTP against the real app
(and, where it says so, a separate process writing the same knowledge base). After each round
every document is either whole (record, chunks found by search, local copy, stored file) or
gone (none of them), and ingesting its bytes again brings it back whole."""

from __future__ import annotations

import hashlib
import random
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from kb.settings import Settings
from tests.api.conftest import Running, is_upload, serve, upload
from tests.api.test_service import assert_error

_CONSONANTS = "bcdfghjklmnpqrstvwz"
_VOWELS = "aeiou"
_rng = random.Random(20240611)


def made_up_word() -> str:
    """A word no other content has: search finds its document first."""
    return "".join(_rng.choice(_CONSONANTS) + _rng.choice(_VOWELS) for _ in range(5))


def content() -> tuple[bytes, str]:
    """Unique text and the word that finds it."""
    word = made_up_word()
    text = f"The {word} ledger records harbour fees. Every {word} entry is checked twice.\n"
    return text.encode(), word


def doc_id_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def races(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Iterator[Running]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("races") / "kbdata")
    running = serve(settings, embedder)
    try:
        yield running
    finally:
        running.stop()


def assert_whole(api: Running, client: httpx.Client, doc_id: str, word: str) -> dict[str, Any]:
    """The document is listed, its chunks are stored and found, its copy and file exist."""
    response = client.get(f"/v1/documents/{doc_id}")
    assert response.status_code == 200, response.text
    doc: dict[str, Any] = response.json()
    kb = api.app.state.kb
    assert len(kb.index.chunks(doc_id)) == doc["chunk_count"] >= 1
    assert kb.blobs.has(doc_id), "listed without its local copy"
    assert doc["file_ids"], "listed without stored files"
    assert all(kb.files.exists(f) for f in doc["file_ids"]), "listed without its stored file"
    hits = client.get("/v1/search", params={"q": word, "mode": "bm25", "k": 3}).json()
    assert doc_id in [h["document"]["id"] for h in hits["results"]], "listed, never found"
    return doc


def assert_gone(api: Running, client: httpx.Client, doc_id: str) -> None:
    """No record, no chunk, no local copy, no stored file."""
    assert_error(client.get(f"/v1/documents/{doc_id}"), 404, "not_found")
    kb = api.app.state.kb
    assert kb.index.chunks(doc_id) == []
    assert not kb.blobs.has(doc_id)
    assert list(kb.files.root.glob(f"local-{doc_id[:32]}-*")) == []


def together(*calls: Callable[[], httpx.Response]) -> list[httpx.Response]:
    """Run the calls at the same moment, each in its own thread."""
    start = threading.Barrier(len(calls))

    def run(call: Callable[[], httpx.Response]) -> httpx.Response:
        start.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def later(seconds: float, call: Callable[[], httpx.Response]) -> Callable[[], httpx.Response]:
    def run() -> httpx.Response:
        time.sleep(seconds)
        return call()

    return run


# 1. Same-name uploads -----------------------------------------------------------------------

SAME_NAMES = [  # names the server cleans to one: (as sent, cleaned)
    (["notes.txt", "notes.txt"], "notes.txt"),
    (["otherdir/same.txt", "same.txt"], "same.txt"),  # a path: its base name is kept
    (["😀.txt", "😁.txt"], "_.txt"),
]


def test_same_name_uploads_stay_separate_documents(races: Running) -> None:
    with races.client() as client:
        for round_ in range(15):
            sent, cleaned = SAME_NAMES[round_ % len(SAME_NAMES)]
            names = [sent[i % len(sent)] for i in range(4)]
            files = [content() for _ in names]
            responses = together(
                *(
                    lambda name=name, data=data: upload(client, {name: data})
                    for name, (data, _) in zip(names, files, strict=True)
                )
            )
            results = [r.json()["results"][0] for r in responses]
            assert [r["status"] for r in results] == ["added"] * 4, results
            assert [r["doc_id"] for r in results] == [doc_id_of(d) for d, _ in files]
            assert len({r["path"] for r in results}) == 4  # four sources, not one
            for result, (_, word) in zip(results, files, strict=True):
                assert is_upload(result["path"], cleaned), result["path"]
                doc = assert_whole(races, client, result["doc_id"], word)
                assert doc["sources"] == [result["path"]]
                assert doc["title"] == cleaned.removesuffix(".txt")


def test_put_replaces_a_document_and_its_old_version_goes(races: Running) -> None:
    with races.client() as client:
        for _ in range(4):
            (old, _), (new, new_word) = content(), content()
            first = upload(client, {"report.txt": old}).json()["results"][0]
            response = client.put(
                f"/v1/documents/{first['doc_id']}", files=[("file", ("report-v2.txt", new))]
            )
            assert response.status_code == 200, response.text
            [result] = response.json()["results"]
            assert result["status"] == "updated" and result["doc_id"] == doc_id_of(new)
            assert result["path"] == first["path"]  # the document keeps its source
            assert_gone(races, client, first["doc_id"])
            doc = assert_whole(races, client, result["doc_id"], new_word)
            assert doc["sources"] == [first["path"]] and doc["title"] == "report-v2"

        same = client.put(f"/v1/documents/{result['doc_id']}", files=[("file", ("r.txt", new))])
        assert same.json()["results"][0]["status"] == "unchanged"
        missing = client.put(f"/v1/documents/{'0' * 64}", files=[("file", ("r.txt", b"x"))])
        assert_error(missing, 404, "not_found")
        two = client.put(
            f"/v1/documents/{result['doc_id']}",
            files=[("file", ("a.txt", b"one")), ("file", ("b.txt", b"two"))],
        )
        assert_error(two, 400, "invalid_request")
        assert_whole(races, client, result["doc_id"], new_word)


def test_concurrent_puts_of_one_document_leave_one_version(races: Running) -> None:
    with races.client() as client:
        for _ in range(4):
            data, _ = content()
            first = upload(client, {"draft.txt": data}).json()["results"][0]
            versions = [content() for _ in range(3)]
            responses = together(
                *(
                    lambda v=v, url=f"/v1/documents/{first['doc_id']}": client.put(
                        url, files=[("file", ("draft.txt", v))]
                    )
                    for v, _ in versions
                )
            )
            statuses = sorted(r.status_code for r in responses)
            assert statuses == [200, 404, 404], [r.text for r in responses]  # one at a time
            [done] = [r.json()["results"][0] for r in responses if r.status_code == 200]
            assert done["status"] == "updated" and done["path"] == first["path"]
            assert_gone(races, client, first["doc_id"])
            word = next(w for v, w in versions if doc_id_of(v) == done["doc_id"])
            doc = assert_whole(races, client, done["doc_id"], word)
            assert doc["sources"] == [first["path"]]
            for v, _ in versions:  # the versions that lost never became documents
                if doc_id_of(v) != done["doc_id"]:
                    assert_gone(races, client, doc_id_of(v))


# 2. and 3. Uploads racing a DELETE ----------------------------------------------------------


def test_a_reupload_racing_a_delete_never_leaves_a_ghost(races: Running) -> None:
    rng = random.Random(2)
    outcomes = []
    with races.client() as client, races.client() as deleter:
        for round_ in range(15):
            data, word = content()
            doc_id = upload(client, {"a.txt": data}).json()["results"][0]["doc_id"]
            # New files before it in the same request keep the run busy between reading the
            # records at its start and adding the source: the DELETE lands in between.
            files = {f"pad-{round_}-{i}.txt": content()[0] for i in range(2)}
            files["a-again.txt"] = data
            delete = lambda url=f"/v1/documents/{doc_id}": deleter.delete(url)  # noqa: E731
            again, deleted = together(
                lambda files=files: upload(client, files), later(rng.uniform(0, 0.5), delete)
            )
            assert again.status_code == 200 and deleted.status_code == 200
            assert [r["status"] for r in again.json()["results"]] == ["added"] * 3, again.text
            if client.get(f"/v1/documents/{doc_id}").status_code == 200:
                outcomes.append("whole")
                assert_whole(races, client, doc_id, word)
            else:
                outcomes.append("gone")
                assert_gone(races, client, doc_id)
            restored = upload(client, {"a.txt": data}).json()["results"][0]
            assert restored["status"] == "added"
            assert_whole(races, client, doc_id, word)
    print("re-upload vs delete:", outcomes)


def test_new_uploads_racing_deletes_never_leave_a_document_without_its_files(
    races: Running,
) -> None:
    rng = random.Random(3)
    with races.client() as client, races.client() as deleter:
        for _ in range(12):
            data, word = content()
            doc_id = doc_id_of(data)

            def delete_a_few(doc_id: str = doc_id) -> httpx.Response:
                response = httpx.Response(404)
                for _ in range(3):
                    time.sleep(rng.uniform(0, 0.25))
                    response = deleter.delete(f"/v1/documents/{doc_id}")
                    assert response.status_code in (200, 404), response.text
                return response

            first, second, _ = together(
                lambda data=data: upload(client, {"b.txt": data}),
                lambda data=data: upload(client, {"b-copy.txt": data}),
                delete_a_few,
            )
            for response in (first, second):
                assert response.status_code == 200, response.text
                assert response.json()["results"][0]["status"] == "added", response.text
            if client.get(f"/v1/documents/{doc_id}").status_code == 200:
                assert_whole(races, client, doc_id, word)
            else:
                assert_gone(races, client, doc_id)
            assert upload(client, {"b.txt": data}).json()["results"][0]["status"] == "added"
            assert_whole(races, client, doc_id, word)


# 4. Identical uploads -------------------------------------------------------------------------


def test_concurrent_identical_uploads_keep_every_source(races: Running) -> None:
    with races.client() as client:
        for _ in range(15):
            data, word = content()
            responses = together(
                *(lambda i=i, data=data: upload(client, {f"copy-{i}.txt": data}) for i in range(4))
            )
            results = [r.json()["results"][0] for r in responses]
            assert {r["status"] for r in results} == {"added"}, results
            assert {r["doc_id"] for r in results} == {doc_id_of(data)}
            doc = assert_whole(races, client, doc_id_of(data), word)
            assert sorted(doc["sources"]) == sorted(r["path"] for r in results)

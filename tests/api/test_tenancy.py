"""A knowledge base per API key, over real HTTP against the real app: two keys, two knowledge
bases, the same file in both, and nothing crosses in any route (list, get, original, replace,
delete, search, ask, stream), not even by guessing the other knowledge base's document id (a
404 like any unknown id, never a 403)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from kb.settings import Settings
from tests.api.conftest import Running, serve, upload
from tests.api.test_ask import parse_sse
from tests.api.test_service import assert_error

FINANCE, SUPPORT, PLAIN = "key-finance", "key-support", "key-plain"
KEYS = (f"{FINANCE}=finance", f"{SUPPORT}=support", PLAIN)
SHARED = {"handbook.md": "# Handbook\n\nThe office opens at eight and closes at six on weekdays."}
LEDGER = {"ledger.md": "# Ledger\n\nThe quarterly dividend of 42 cents was paid in March."}
TICKETS = {"tickets.md": "# Tickets\n\nPrinter jams on the third floor are fixed by Dana."}


@pytest.fixture
def tenants(tmp_path: Any, embedder: Any) -> Iterator[Running]:
    running = serve(Settings(data_dir=tmp_path / "kbdata", api_keys=KEYS), embedder)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def loaded(
    tmp_path_factory: pytest.TempPathFactory, embedder: Any
) -> Iterator[tuple[Running, dict[str, dict[str, str]]]]:
    """A server whose knowledge bases are `load`ed, for tests that change nothing."""
    data_dir = tmp_path_factory.mktemp("tenants") / "kbdata"
    running = serve(Settings(data_dir=data_dir, api_keys=KEYS), embedder)
    try:
        yield running, load(running)
    finally:
        running.stop()


def load(running: Running) -> dict[str, dict[str, str]]:
    """The handbook in both knowledge bases, the ledger in finance's, the tickets in
    support's; returns {key: {file name: document id}}."""
    ids: dict[str, dict[str, str]] = {}
    for key, files in ((FINANCE, SHARED | LEDGER), (SUPPORT, SHARED | TICKETS)):
        with running.client(key=key) as client:
            response = upload(client, files)
        assert response.status_code == 200, response.text
        results = response.json()["results"]
        assert {r["status"] for r in results} == {"added"}
        ids[key] = {r["path"].rsplit("/", 1)[-1]: r["doc_id"] for r in results}
    return ids


def listed(client: httpx.Client) -> dict[str, dict[str, Any]]:
    body = client.get("/v1/documents").json()
    return {d["id"]: d for d in body["documents"]}


def test_each_key_lists_and_gets_only_its_own_documents(loaded: Any) -> None:
    tenants, ids = loaded
    shared = ids[FINANCE]["handbook.md"]
    assert shared == ids[SUPPORT]["handbook.md"]  # one content, one id: in each its own record
    with tenants.client(key=FINANCE) as finance, tenants.client(key=SUPPORT) as support:
        mine, theirs = listed(finance), listed(support)
        assert set(mine) == {shared, ids[FINANCE]["ledger.md"]}
        assert set(theirs) == {shared, ids[SUPPORT]["tickets.md"]}
        # two documents: each stored its own file
        assert set(mine[shared]["file_ids"]).isdisjoint(theirs[shared]["file_ids"])
        assert finance.get(f"/v1/documents/{shared}").json()["file_ids"] == mine[shared]["file_ids"]
        with tenants.client(key=PLAIN) as plain:  # a plain key: the default knowledge base
            assert listed(plain) == {}


def test_a_guessed_id_of_another_knowledge_base_is_a_404_like_any_unknown_id(
    loaded: Any,
) -> None:
    tenants, ids = loaded
    ledger = ids[FINANCE]["ledger.md"]
    unknown = "0" * 64
    with tenants.client(key=SUPPORT) as support:
        for method, path in (
            ("GET", f"/v1/documents/{ledger}"),
            ("GET", f"/v1/documents/{ledger}/original"),
            ("DELETE", f"/v1/documents/{ledger}"),
            ("PUT", f"/v1/documents/{ledger}"),
        ):
            files = {"file": ("ledger.md", b"# Ledger\n\nNothing was paid.")}
            extra = {"files": files} if method == "PUT" else {}
            guessed = support.request(method, path, **extra)
            made_up = support.request(method, path.replace(ledger, unknown), **extra)
            body = assert_error(guessed, 404, "not_found")
            other = assert_error(made_up, 404, "not_found")
            assert body["error"]["message"] == other["error"]["message"].replace(unknown, ledger)
    with tenants.client(key=FINANCE) as finance:
        doc = finance.get(f"/v1/documents/{ledger}").json()
        assert doc["chunk_count"] > 0 and "42 cents" not in str(doc)  # untouched, not replaced
        hits = finance.get("/v1/search", params={"q": "quarterly dividend"}).json()["results"]
        assert hits[0]["document"]["id"] == ledger


def test_search_ask_and_stream_never_reach_another_knowledge_base(loaded: Any) -> None:
    tenants, ids = loaded
    theirs = set(ids[FINANCE].values()) - set(ids[SUPPORT].values())
    question = "How much was the quarterly dividend paid in March?"
    with tenants.client(key=SUPPORT) as support:
        for mode in ("dense", "bm25", "hybrid"):
            body = support.get("/v1/search", params={"q": question, "mode": mode}).json()
            found = {h["document"]["id"] for h in body["results"]}
            assert found <= set(ids[SUPPORT].values()), mode
            assert found or mode == "bm25", mode  # no word of it is in support's documents
        answer = support.post("/v1/ask", json={"question": question}).json()
        with support.stream("POST", "/v1/ask/stream", json={"question": question}) as r:
            assert r.status_code == 200
            events = parse_sse(r.read().decode())
    streamed = events[-1][1]
    for body in (answer, streamed):
        used = {d["id"] for d in body["documents"]} | {c["document_id"] for c in body["citations"]}
        assert used and used.isdisjoint(theirs)
        assert "42 cents" not in body["answer"]
    with tenants.client(key=FINANCE) as finance:  # the same question where the ledger is
        answer = finance.post("/v1/ask", json={"question": question}).json()
    assert answer["citations"][0]["document_id"] == ids[FINANCE]["ledger.md"]
    assert "42 cents" in answer["answer"]


def test_deleting_a_document_in_one_knowledge_base_leaves_the_others_copy(
    tenants: Running,
) -> None:
    ids = load(tenants)
    shared = ids[SUPPORT]["handbook.md"]
    with tenants.client(key=SUPPORT) as support:
        assert support.delete(f"/v1/documents/{shared}").status_code == 200
        assert_error(support.get(f"/v1/documents/{shared}"), 404, "not_found")
        hits = support.get("/v1/search", params={"q": "When does the office open?"}).json()
        assert shared not in {h["document"]["id"] for h in hits["results"]}
        assert_error(support.get(f"/v1/documents/{shared}/original"), 404, "not_found")
    with tenants.client(key=FINANCE) as finance:
        original = finance.get(f"/v1/documents/{shared}/original")
        doc = finance.get(f"/v1/documents/{shared}").json()
        answer = finance.post("/v1/ask", json={"question": "When does the office open?"}).json()
    assert original.status_code == 200 and original.text == SHARED["handbook.md"]
    assert answer["citations"][0]["document_id"] == shared
    kb = tenants.app.state.kbs.get("finance")
    assert kb.blobs.has(shared)  # its copy, for re-uploads and new windows
    assert all(kb.files.exists(file_id) for file_id in doc["file_ids"])


def test_a_knowledge_base_opens_on_its_keys_first_requests(
    tenants: Running,
) -> None:
    kbs = tenants.settings.data_dir / "kbs"
    assert not kbs.exists()  # startup loaded the model and the plain keys' knowledge base
    barrier = threading.Barrier(4)
    statuses: list[int] = []

    def first_request() -> None:
        with tenants.client(key=FINANCE) as client:
            barrier.wait()
            statuses.append(client.get("/v1/documents").status_code)

    threads = [threading.Thread(target=first_request) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [200] * 4
    assert sorted(p.name for p in kbs.iterdir()) == ["finance"]  # support: not used yet
    registry = tenants.app.state.kbs
    assert registry.opened("finance") is registry.get("finance")
    assert registry.opened("support") is None


def test_with_every_key_mapped_ready_reports_on_the_first_knowledge_base_by_name(
    tmp_path: Any, embedder: Any
) -> None:
    settings = Settings(data_dir=tmp_path / "kbdata", api_keys=(f"{SUPPORT}=support", KEYS[0]))
    running = serve(settings, embedder)
    try:
        assert not (settings.data_dir / "kbs").exists()  # nothing opened at startup
        with running.client() as client:
            ready = client.get("/ready")
        assert ready.status_code == 200 and ready.json()["documents"] == 0
        assert [p.name for p in (settings.data_dir / "kbs").iterdir()] == ["finance"]
        assert not (settings.data_dir / "chroma").exists()  # no default knowledge base made
    finally:
        running.stop()


def test_a_wrong_key_reaches_no_knowledge_base(loaded: Any) -> None:
    tenants, _ = loaded
    with tenants.client(key="finance") as client:  # a name is not a key
        assert_error(client.get("/v1/documents"), 401, "unauthorized")
    with tenants.client(key=f"{FINANCE}=finance") as client:
        assert_error(client.get("/v1/documents"), 401, "unauthorized")


# -- one Anthropic workspace, two knowledge bases -----------------------------------------------


def test_knowledge_bases_sharing_a_workspace_upload_delete_and_collect_only_their_own(
    online_settings: Any, standin: Any, embedder: Any, tmp_path: Any
) -> None:
    from kb.service import open_kb
    from standin.pdfs import make_pdf

    pdf = make_pdf(tmp_path / "etna.pdf", ["Volcanoes.", "Mount Etna erupted in 2021."])
    running = serve(online_settings.replace(api_keys=KEYS), embedder)
    try:
        file_ids = {}
        for key in (FINANCE, SUPPORT):
            with running.client(key=key) as client:
                response = upload(client, {"etna.pdf": pdf.read_bytes()})
                assert response.json()["results"][0]["status"] == "added", response.text
                [doc] = client.get("/v1/documents").json()["documents"]
                file_ids[key] = doc["file_ids"]
        # the same content: one upload for each knowledge base, each under its own name
        stored = {file_id: f.filename for file_id, f in standin.state.files.items()}
        assert sorted(stored) == sorted(file_ids[FINANCE] + file_ids[SUPPORT])
        assert all(stored[f].startswith("kb-finance-") for f in file_ids[FINANCE])
        assert all(stored[f].startswith("kb-support-") for f in file_ids[SUPPORT])

        # an unreferenced file in each knowledge base, old enough for gc
        settings = online_settings.replace(gc_grace_seconds=0)
        orphans = {}
        for name in ("finance", "support"):
            with open_kb(settings.for_kb(name), embedder=embedder) as kb:
                orphans[name] = kb.files.upload("f" * 64, 0, "orphan.txt", "text/plain", b"x")
        with open_kb(settings.for_kb("support"), embedder=embedder) as support:
            deleted = {s.file_id for s in support.collect_garbage().deleted}
        assert deleted == {orphans["support"]}  # never finance's, referenced or not
        assert orphans["finance"] in standin.state.files

        with running.client(key=SUPPORT) as client:
            [doc] = client.get("/v1/documents").json()["documents"]
            assert client.delete(f"/v1/documents/{doc['id']}").status_code == 200
        assert not set(file_ids[SUPPORT]) & set(standin.state.files)
        assert set(file_ids[FINANCE]) <= set(standin.state.files)
        with running.client(key=FINANCE) as client:
            body = client.post("/v1/ask", json={"question": "When did Etna erupt?"}).json()
        assert body["answered_by"] == "claude"
        assert body["documents"][0]["file_id"] in file_ids[FINANCE]
        assert body["citations"][0]["page_start"] == 2
    finally:
        running.stop()

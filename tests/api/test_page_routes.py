"""What the web page needs from the server, over HTTP: the page and its files, the headers that
keep a browser from doing more than the page asks, the original file of a document, and the
list filtered by name."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from api.security import CONTENT_SECURITY_POLICY
from kb.settings import Settings
from standin.pdfs import pdf_bytes
from tests.api.conftest import API_KEY, Running, serve, upload
from tests.api.test_service import assert_error


def test_the_page_and_its_files_are_served_without_a_key(api: Running) -> None:
    with api.client() as client:
        page = client.get("/")
        script = client.get("/ui/kb.js")
        style = client.get("/ui/kb.css")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<script src="/ui/kb.js"' in page.text and "<style" not in page.text
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert "/v1/ask/stream" in script.text
    assert style.status_code == 200 and style.headers["content-type"].startswith("text/css")
    assert "no-cache" in page.headers["cache-control"]


def test_every_response_says_how_a_browser_may_treat_it(api: Running) -> None:
    with api.client() as client:
        for path in ("/", "/ui/kb.js", "/v1/documents", "/v1/documents/nope", "/health"):
            response = client.get(path)
            assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY, path
            assert response.headers["x-content-type-options"] == "nosniff", path
            assert response.headers["x-frame-options"] == "DENY", path
            assert response.headers["referrer-policy"] == "no-referrer", path
        docs = client.get("/schema/swagger")  # loads Swagger UI from its CDN
    assert docs.status_code == 200
    assert "content-security-policy" not in docs.headers
    assert docs.headers["x-content-type-options"] == "nosniff"


def test_the_policy_allows_only_the_pages_own_script_and_style() -> None:
    rules = dict(rule.strip().split(" ", 1) for rule in CONTENT_SECURITY_POLICY.split(";"))
    assert rules["default-src"] == "'none'"
    assert rules["script-src"] == "'self'" and rules["style-src"] == "'self'"
    assert rules["connect-src"] == "'self'" and rules["frame-ancestors"] == "'none'"
    assert "unsafe" not in CONTENT_SECURITY_POLICY


def test_a_file_under_ui_that_is_not_there_is_404(api: Running) -> None:
    with api.client() as client:
        assert client.get("/ui/missing.js").status_code == 404
        assert client.get("/ui/../app.py").status_code == 404


def test_the_original_is_the_ingested_file(api: Running) -> None:
    with api.client() as client:
        pdf = pdf_bytes(["First page.", "Second page about harbour dues."])
        assert upload(client, {"dues.pdf": pdf}).json()["results"][0]["status"] == "added"
        doc_id = hashlib.sha256(pdf).hexdigest()
        response = client.get(f"/v1/documents/{doc_id}/original")
        [text_doc] = client.get("/v1/documents", params={"name": "bread"}).json()["documents"]
        text = client.get(f"/v1/documents/{text_doc['id']}/original")
        head = client.head(f"/v1/documents/{doc_id}/original")
    assert response.status_code == 200
    assert response.content == pdf
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-disposition"] == 'inline; filename="dues.pdf"'
    assert text.headers["content-type"] == "text/plain; charset=utf-8"
    assert hashlib.sha256(text.content).hexdigest() == text_doc["id"]
    assert text.text.startswith("Sourdough bread")
    assert head.status_code == 200 and head.content == b""


def test_the_original_of_an_unknown_or_deleted_document_is_404(api: Running) -> None:
    with api.client() as client:
        assert_error(client.get(f"/v1/documents/{'0' * 64}/original"), 404, "not_found")
        data = b"A note that is about to go."
        doc_id = upload(client, {"gone.txt": data}).json()["results"][0]["doc_id"]
        assert client.get(f"/v1/documents/{doc_id}/original").content == data
        assert client.delete(f"/v1/documents/{doc_id}").status_code == 200
        assert_error(client.get(f"/v1/documents/{doc_id}/original"), 404, "not_found")


def test_documents_are_listed_by_a_part_of_their_name(api: Running) -> None:
    with api.client() as client:
        by_title = client.get("/v1/documents", params={"name": "VOLCANO"}).json()
        by_source = client.get("/v1/documents", params={"name": "chess.md"}).json()
        none = client.get("/v1/documents", params={"name": "no such name"}).json()
        paged = client.get("/v1/documents", params={"name": ".", "limit": 1}).json()
    assert [d["title"] for d in by_title["documents"]] == ["Volcanoes"]
    assert by_title["total"] == 1
    assert [d["title"] for d in by_source["documents"]] == ["Chess openings"]
    assert none == {"documents": [], "offset": 0, "limit": 50, "total": 0}
    assert len(paged["documents"]) == 1 and paged["total"] >= 3


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Iterator[Running]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("keyed") / "kbdata", api_keys=(API_KEY,))
    running = serve(settings, embedder)
    try:
        yield running
    finally:
        running.stop()


def test_the_original_needs_the_key_the_page_does_not(keyed: Running) -> None:
    with keyed.client(key=API_KEY) as client:
        doc_id = upload(client, {"key.txt": b"Only for key holders."}).json()["results"][0][
            "doc_id"
        ]
    url = f"/v1/documents/{doc_id}/original"
    with httpx.Client(base_url=keyed.base_url) as anonymous:
        assert anonymous.get("/").status_code == 200
        assert_error(anonymous.get(url), 401, "unauthorized")
    with keyed.client(key="wrong") as wrong:
        assert_error(wrong.get(url), 401, "unauthorized")
    with keyed.client(key=API_KEY) as client:
        assert client.get(url).content == b"Only for key holders."

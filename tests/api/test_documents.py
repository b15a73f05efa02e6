"""`/v1/documents`: multipart uploads streamed to disk, limits, listing, get and delete."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any

import httpx

from api.uploads import STALE_UPLOAD_SECONDS
from kb.settings import Settings
from standin.pdfs import make_pdf
from tests.api.conftest import UPLOAD_LIMIT, Running, is_upload, serve, source_of, upload
from tests.api.test_service import assert_error


def test_upload_pdf_then_get_list_and_delete(
    api: Running, client: httpx.Client, tmp_path: Path
) -> None:
    pdf = make_pdf(tmp_path / "r.pdf", ["Glaciers carve valleys.", "Moraines mark old ice."])
    response = upload(client, {"glaciers.pdf": pdf.read_bytes()})
    assert response.status_code == 200, response.text
    body = response.json()
    [result] = body["results"]
    assert is_upload(result["path"], "glaciers.pdf")
    assert result["status"] == "added" and result["label"] == "added"
    assert result["pages"] == 2 and result["chunks"] >= 1
    assert body["counts"] == {"added": 1} and body["failed"] == 0
    doc_id = result["doc_id"]

    again = upload(client, {"glaciers.pdf": pdf.read_bytes()}).json()
    [second] = again["results"]  # another upload of the same bytes: a second source
    assert second["status"] == "added" and second["doc_id"] == doc_id
    assert second["reason"] == f"same content as {result['path']}"
    assert is_upload(second["path"], "glaciers.pdf") and second["path"] != result["path"]

    doc = client.get(f"/v1/documents/{doc_id}").json()
    assert doc["kind"] == "pdf" and doc["page_count"] == 2
    assert doc["source"] == result["path"]
    assert doc["sources"] == [result["path"], second["path"]]
    assert doc["file_ids"] and doc["file_ids"][0].startswith("local-")

    pdfs = client.get("/v1/documents", params={"kind": "pdf"}).json()
    assert [d["id"] for d in pdfs["documents"]] == [doc_id]
    assert pdfs["total"] == 1

    deleted = client.delete(f"/v1/documents/{doc_id}")
    assert deleted.status_code == 200 and deleted.json()["id"] == doc_id
    assert_error(client.get(f"/v1/documents/{doc_id}"), 404, "not_found")
    assert_error(client.delete(f"/v1/documents/{doc_id}"), 404, "not_found")
    hits = client.get("/v1/search", params={"q": "glaciers moraines"}).json()["results"]
    assert doc_id not in {h["document"]["id"] for h in hits}


def test_list_paginates_and_filters_by_source_prefix(client: httpx.Client) -> None:
    everything = client.get("/v1/documents", params={"limit": 1000}).json()
    assert everything["total"] >= 3
    first = client.get("/v1/documents", params={"limit": 2, "offset": 0}).json()
    second = client.get("/v1/documents", params={"limit": 2, "offset": 2}).json()
    assert len(first["documents"]) == 2
    ids = [d["id"] for d in first["documents"] + second["documents"]]
    assert len(ids) == len(set(ids))
    assert first["total"] == everything["total"]
    bread_source = source_of(client, "bread.txt")
    prefix = bread_source.removesuffix("bread.txt")  # upload:<its own id>/
    bread = client.get("/v1/documents", params={"source_prefix": prefix}).json()
    assert bread["total"] == 1
    assert bread["documents"][0]["source"] == bread_source
    assert_error(client.get("/v1/documents", params={"limit": 0}), 400, "invalid_request")
    assert_error(client.get("/v1/documents", params={"kind": "video"}), 400, "invalid_request")


def test_path_like_filenames_stay_inside_the_temp_dir(api: Running, client: httpx.Client) -> None:
    root = api.settings.data_dir
    names = {
        "../../etc/passwd.txt": "traversal attempt one",
        "..\\..\\windows\\evil.md": "traversal attempt two",
        "/abs/path/notes.txt": "absolute path attempt",
    }
    response = upload(client, names)
    assert response.status_code == 200, response.text
    sources = [r["path"] for r in response.json()["results"]]
    cleaned = ["passwd.txt", "evil.md", "notes.txt"]
    assert len(sources) == len(cleaned) == len(set(sources))
    assert all(is_upload(s, n) for s, n in zip(sources, cleaned, strict=True)), sources
    for escaped in (root.parent / "etc", root.parent.parent / "etc", root / "etc"):
        assert not escaped.exists()
    assert list((root / "tmp").iterdir()) == []  # temp files are removed


def test_empty_file_gets_a_status(client: httpx.Client) -> None:
    response = upload(client, {"empty.txt": b""})
    assert response.status_code == 200, response.text
    [result] = response.json()["results"]
    assert result["status"] in ("skipped", "failed")
    assert "empty" in result["reason"]


def test_unsupported_upload_is_415_and_nothing_is_ingested(client: httpx.Client) -> None:
    before = client.get("/v1/documents").json()["total"]
    response = upload(client, {"program.exe": b"MZ\x90\x00binary"})
    body = assert_error(response, 415, "unsupported_type")
    assert "program.exe" in body["error"]["message"]
    assert client.get("/v1/documents").json()["total"] == before


def test_an_unsupported_file_never_stops_the_others(client: httpx.Client) -> None:
    response = upload(
        client,
        {"harbour-fees.txt": "Mooring costs 12 euros a night.", "program.exe": b"MZ\x90\x00binary"},
    )
    assert response.status_code == 200
    results = {r["path"].rpartition("/")[2]: r for r in response.json()["results"]}
    assert all(is_upload(r["path"], name) for name, r in results.items())
    assert results["harbour-fees.txt"]["status"] == "added"
    assert results["program.exe"]["status"] == "skipped"
    assert results["program.exe"]["reason"] == "unsupported type"


def test_non_multipart_body_is_415(client: httpx.Client) -> None:
    assert_error(client.post("/v1/documents", json={"file": "x"}), 415, "unsupported_type")


def test_no_file_parts_is_400(client: httpx.Client) -> None:
    only_field = b'--b\r\nContent-Disposition: form-data; name="note"\r\n\r\nhello\r\n--b--\r\n'
    response = client.post(
        "/v1/documents",
        content=only_field,
        headers={"content-type": "multipart/form-data; boundary=b"},
    )
    body = assert_error(response, 400, "invalid_request")
    assert "no files" in body["error"]["message"]
    # a browser's empty file input: a part with filename=""
    response = client.post("/v1/documents", data={"only": "a field"}, files=[("x", ("", b""))])
    assert_error(response, 400, "invalid_request")


def test_broken_multipart_is_400(client: httpx.Client) -> None:
    response = client.post(
        "/v1/documents",
        content=b'--b\r\nContent-Disposition: form-data; name="f"; filename="a.txt"\r\n\r\nab',
        headers={"content-type": "multipart/form-data; boundary=b"},
    )
    assert_error(response, 400, "invalid_request")


def test_over_limit_with_content_length_is_413(client: httpx.Client) -> None:
    response = upload(client, {"big.txt": b"a" * (UPLOAD_LIMIT + 1)})
    body = assert_error(response, 413, "too_large")
    assert str(UPLOAD_LIMIT) in body["error"]["message"]


def test_over_limit_streamed_without_length_is_413(client: httpx.Client) -> None:
    boundary = "kbtestboundary"

    def body():  # chunked transfer: no Content-Length, the server must count
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; '
            f'filename="big.txt"\r\nContent-Type: text/plain\r\n\r\n'
        ).encode()
        for _ in range(UPLOAD_LIMIT // 65536 + 4):
            yield b"b" * 65536
        yield f"\r\n--{boundary}--\r\n".encode()

    response = client.post(
        "/v1/documents",
        content=body(),
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
    )
    assert_error(response, 413, "too_large")


def test_declared_huge_body_is_refused_before_reading(api: Running) -> None:
    """A 10 GB Content-Length gets its 413 though no body byte was sent: a server that waited
    for the body would answer nothing, and the read would time out."""
    host, port = api.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/documents HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: multipart/form-data; boundary=zz\r\n"
            b"Content-Length: 10000000000\r\n\r\n"
        )
        head = sock.recv(4096).decode("latin-1")
    assert head.startswith("HTTP/1.1 413"), head


def test_upload_dirs_a_killed_server_left_are_removed_at_start(
    tmp_path: Path, embedder: Any
) -> None:
    """Old ones go; a young one may be another worker's request in progress and stays."""
    settings = Settings(data_dir=tmp_path / "kbdata")
    tmp = settings.data_dir / "tmp"
    left, busy = tmp / "upload-left1234", tmp / "upload-busy5678"
    for directory in (left, busy):
        directory.mkdir(parents=True)
        (directory / "000-report.pdf").write_bytes(b"%PDF-1.4 partial")
    long_ago = time.time() - STALE_UPLOAD_SECONDS - 60
    for path in (left / "000-report.pdf", left, busy):  # busy: its file is still being written
        os.utime(path, (long_ago, long_ago))
    running = serve(settings, embedder)
    try:
        with running.client() as client:
            assert client.get("/health").status_code == 200
        assert not left.exists()
        assert (busy / "000-report.pdf").read_bytes() == b"%PDF-1.4 partial"
    finally:
        running.stop()

"""The API as an attacker sees it: bounded work, exact errors, nothing accepted by accident.

Each test talks to the real app under uvicorn over HTTP (raw sockets where a client library
would not send what an attacker does)."""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from api.body import GRACE, limit_body
from api.errors import EscapingFormatter, printable
from kb.errors import ClientDisconnected, RequestTimeout
from kb.extraction import MAX_PAGE_CHARS
from kb.settings import Settings
from standin.pdfs import inflating_pdf_bytes
from tests.api.conftest import UPLOAD_LIMIT, Running, serve, upload
from tests.api.test_service import assert_error

APP_ORIGIN = "https://app.example.com"


def uploaded_name(source: str) -> str:
    """The client's file name in an upload's source, `upload:<random id>/<name>`."""
    match = re.fullmatch(r"upload:[0-9a-f]{12}/(.+)", source)
    assert match is not None, source
    return match[1]


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Iterator[Running]:
    """A server with a short body deadline, one allowed host name and one CORS origin."""
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("strict") / "kbdata",
        max_upload_bytes=UPLOAD_LIMIT,
        body_timeout=2.0,
        allowed_hosts=("kb.example.com",),
        cors_origins=(APP_ORIGIN,),
    )
    running = serve(settings, embedder)
    try:
        yield running
    finally:
        running.stop()


def address(running: Running) -> tuple[str, int]:
    host, port = running.base_url.removeprefix("http://").split(":")
    return host, int(port)


def raw_request(running: Running, head: bytes, body: bytes = b"", timeout: float = 30) -> str:
    with socket.create_connection(address(running), timeout=timeout) as sock:
        sock.sendall(head + body)
        return read_response(sock)


def read_response(sock: socket.socket) -> str:
    chunks = []
    with contextlib.suppress(TimeoutError, ConnectionResetError):
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode("latin-1")


def multipart_head(host: str, length: int | None, boundary: str = "zz") -> bytes:
    size = f"Content-Length: {length}\r\n" if length is not None else ""
    return (
        f"POST /v1/documents HTTP/1.1\r\nHost: {host}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n{size}\r\n"
    ).encode()


def part_head(filename: str, boundary: str = "zz") -> bytes:
    return (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"'
        "\r\nContent-Type: text/plain\r\n\r\n"
    ).encode()


def temp_files(running: Running) -> list[Path]:
    tmp = running.settings.data_dir / "tmp"
    return [p for p in tmp.rglob("*") if p.is_file()] if tmp.exists() else []


def wait_until(condition: Any, timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return bool(condition())


# --- 1. what one document may cost ----------------------------------------------------------


def test_a_pdf_that_inflates_is_ingested_with_its_page_cut(client: httpx.Client) -> None:
    data = inflating_pdf_bytes(4_850_000)
    response = upload(client, {"bomb.pdf": data})
    assert response.status_code == 200, response.text
    [result] = response.json()["results"]
    assert result["status"] == "added"
    assert f"text cut at {MAX_PAGE_CHARS:,} characters: page 1" in result["reason"]
    assert 0 < result["chunks"] < 100  # 20,000 characters, not 6,620 chunks
    doc = client.get(f"/v1/documents/{result['doc_id']}").json()
    assert doc["notes"] == [f"text cut at {MAX_PAGE_CHARS:,} characters: page 1"]


# --- 2. request bodies have a deadline ------------------------------------------------------


def test_a_stalled_upload_is_dropped_with_408_and_its_temp_file_removed(strict: Running) -> None:
    host, _ = address(strict)
    with socket.create_connection(address(strict), timeout=30) as sock:
        sock.sendall(multipart_head(host, 10_000) + part_head("stalled.txt") + b"x" * 100)
        assert wait_until(lambda: len(temp_files(strict)) == 1)
        started = time.monotonic()
        reply = read_response(sock)  # the server answers, then closes the connection
    assert time.monotonic() - started < 15
    status, _, body = reply.partition("\r\n\r\n")
    assert status.startswith("HTTP/1.1 408"), reply
    assert "connection: close" in status.lower()
    assert '"type":"request_timeout"' in body and "within 2s" in body
    assert wait_until(lambda: temp_files(strict) == [])


def test_trickling_clients_are_all_dropped_and_others_still_served(strict: Running) -> None:
    host, _ = address(strict)
    replies: list[str] = []

    def trickle() -> None:
        with socket.create_connection(address(strict), timeout=30) as sock:
            sock.sendall(multipart_head(host, 100_000) + part_head("slow.txt"))
            with contextlib.suppress(OSError):
                for _ in range(40):  # a byte every 0.2 s: never a stall, always too slow
                    sock.sendall(b"y")
                    time.sleep(0.2)
            replies.append(read_response(sock))

    threads = [threading.Thread(target=trickle) for _ in range(5)]
    for thread in threads:
        thread.start()
    with strict.client() as client:
        assert client.get("/health").status_code == 200
    for thread in threads:
        thread.join(60)
    assert len(replies) == 5
    assert all(r.startswith("HTTP/1.1 408") for r in replies), replies
    assert wait_until(lambda: temp_files(strict) == [])


def test_the_minimum_rate_applies_after_the_grace_period() -> None:
    """`limit_body` with a clock under the test's control: 1 byte a second passes during the
    grace period and is refused after it; a fast body is never refused."""

    async def run(rate_bytes: int, seconds: int, min_rate: int) -> int:
        now = [0.0]

        async def receive() -> dict[str, Any]:
            now[0] += 1.0
            return {"type": "http.request", "body": b"x" * rate_bytes, "more_body": True}

        limited = limit_body(receive, 1_000, min_rate, clock=lambda: now[0])
        for _ in range(seconds):
            await limited()
        return int(now[0])

    assert anyio.run(run, 1, int(GRACE) - 1, 10_000) == GRACE - 1
    with pytest.raises(RequestTimeout, match="at least 10,000 bytes a second"):
        anyio.run(run, 1, int(GRACE) + 5, 10_000)
    assert anyio.run(run, 50_000, 100, 10_000) == 100
    assert anyio.run(run, 1, 100, 0) == 100  # 0: only the deadline


def test_a_disconnect_mid_body_is_its_own_error() -> None:
    async def run() -> None:
        messages = iter([{"type": "http.request", "body": b"ab", "more_body": True}])

        async def receive() -> dict[str, Any]:
            return next(messages, {"type": "http.disconnect"})

        limited = limit_body(receive, 10, 0)
        await limited()
        await limited()

    with pytest.raises(ClientDisconnected, match="after sending 2 bytes"):
        anyio.run(run)


# --- 3. JSON nested too deeply ----------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 1000 + b"]" * 1000,
        b'{"question": ' + b"[" * 1000 + b"]" * 1000 + b"}",
        b'{"question": "q", "filters": {"source_prefix": ' + b'{"a":' * 1000 + b"1" + b"}" * 1002,
        b'{"question": "q", "extra": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    ],
    ids=["array", "in-a-field", "in-a-nested-field", "in-an-unknown-field"],
)
def test_deeply_nested_json_is_400(client: httpx.Client, body: bytes) -> None:
    response = client.post("/v1/ask", content=body, headers={"content-type": "application/json"})
    assert_error(response, 400, "invalid_request")


# --- 4. long non-ASCII file names -----------------------------------------------------------


def test_a_file_name_of_many_cjk_characters_is_accepted(api: Running, client: httpx.Client) -> None:
    name = "報告書" * 40 + ".txt"  # 120 characters, 364 UTF-8 bytes
    response = upload(client, {name: "Quarterly tide gauge calibration notes."})
    assert response.status_code == 200, response.text
    [result] = response.json()["results"]
    assert result["status"] == "added"
    source = uploaded_name(result["path"])
    assert source.endswith(".txt") and source.startswith("報告書")
    assert len(source.encode()) <= 255
    assert temp_files(api) == []


# --- 5. a client that leaves mid-upload -------------------------------------------------------


def test_a_client_that_disconnects_mid_upload_is_logged_as_such(
    api: Running, caplog: pytest.LogCaptureFixture
) -> None:
    host, _ = address(api)
    caplog.set_level(logging.INFO, logger="kb")
    with socket.create_connection(address(api), timeout=30) as sock:
        sock.sendall(multipart_head(host, 50_000) + part_head("gone.txt") + b"z" * 1000)
        assert wait_until(lambda: len(temp_files(api)) == 1)
    assert wait_until(lambda: any("client disconnected" in r.getMessage() for r in caplog.records))
    assert wait_until(lambda: any(" 499 " in r.getMessage() for r in caplog.records))
    kb_records = [r for r in caplog.records if r.name.startswith("kb")]
    assert not [r for r in kb_records if r.levelno >= logging.ERROR]
    assert not [r for r in kb_records if r.exc_info]
    disconnect = next(r for r in kb_records if "client disconnected" in r.getMessage())
    assert disconnect.levelno == logging.INFO
    assert wait_until(lambda: temp_files(api) == [])


# --- 6. refused or treated alike everywhere ---------------------------------------------------


@pytest.mark.parametrize("value", ["3", 1.5, 3.0, True, [3], None])
def test_max_documents_must_be_an_integer(client: httpx.Client, value: Any) -> None:
    body: dict[str, Any] = {"question": "Sicily", "max_documents": value}
    response = client.post("/v1/ask", json=body)
    if value is None:  # null is "the default", as the schema says
        assert response.status_code == 200, response.text
        return
    message = assert_error(response, 400, "invalid_request")["error"]["message"]
    assert message.startswith("max_documents:"), message


def test_an_integer_max_documents_is_accepted(client: httpx.Client) -> None:
    response = client.post("/v1/ask", json={"question": "Sicily", "max_documents": 3})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "query",
    [
        "offset=1&offset=2",
        "offset=+1",
        "offset=%201",
        "offset=01",
        "offset=1_0",
        "offset=0x1",
        "offset=1e2",
        "limit=5&limit=5",
        "kind=pdf&kind=text",
    ],
)
def test_repeated_or_odd_query_values_are_400(client: httpx.Client, query: str) -> None:
    assert_error(client.get(f"/v1/documents?{query}"), 400, "invalid_request")


def test_repeated_or_odd_k_is_400(client: httpx.Client) -> None:
    assert_error(client.get("/v1/search?q=etna&k=2&k=3"), 400, "invalid_request")
    assert_error(client.get("/v1/search?q=etna&k=+2"), 400, "invalid_request")
    assert_error(client.get("/v1/search?q=a&q=b"), 400, "invalid_request")
    assert client.get("/v1/search?q=etna&k=2").status_code == 200
    assert client.get("/v1/documents?offset=0&limit=10").status_code == 200


@pytest.mark.parametrize(
    "question",
    ["", "   ", "\x00" * 20, "\u200b" * 2000, "\u200b \ufeff\u2060\x07\n\t", "\u202e\u200d"],
    ids=["empty", "spaces", "nul", "zero-width", "format-and-control", "direction-marks"],
)
def test_invisible_questions_are_blank_everywhere(client: httpx.Client, question: str) -> None:
    asked = assert_error(
        client.post("/v1/ask", json={"question": question}), 400, "invalid_request"
    )
    assert "question" in asked["error"]["message"]
    streamed = client.post("/v1/ask/stream", json={"question": question})
    assert_error(streamed, 400, "invalid_request")
    if question:
        searched = assert_error(
            client.get("/v1/search", params={"q": question}), 400, "invalid_request"
        )
        assert searched["error"]["message"].startswith("q: must not be empty")


def test_an_empty_body_gets_a_clear_message(client: httpx.Client) -> None:
    for content in (b"", b"  \n"):
        response = client.post(
            "/v1/ask", content=content, headers={"content-type": "application/json"}
        )
        message = assert_error(response, 400, "invalid_request")["error"]["message"]
        assert "body is empty" in message and "'data'" not in message


def test_an_unknown_field_is_refused(client: httpx.Client) -> None:
    response = client.post("/v1/ask", json={"question": "Sicily", "top_k": 3})
    message = assert_error(response, 400, "invalid_request")["error"]["message"]
    assert "top_k" in message


def test_error_texts_never_show_temp_names(api: Running, client: httpx.Client) -> None:
    response = upload(
        client, {"blank.txt": b"", "binary.txt": b"\x00\x01\x02", "latin.txt": b"caf\xe9"}
    )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [uploaded_name(r["path"]) for r in results] == ["blank.txt", "binary.txt", "latin.txt"]
    reasons = " ".join(r["reason"] for r in results)
    assert "blank.txt is empty" in reasons and "latin.txt: not UTF-8" in reasons
    tmp = str(api.settings.data_dir / "tmp")
    body = response.text
    for r in results:  # the sources' random ids may hold any digits
        body = body.replace(r["path"], "")
    for text in [body, *(r["reason"] for r in results)]:
        assert tmp not in text and "upload-" not in text and "000" not in text


def test_a_part_named_only_by_filename_star_is_accepted(client: httpx.Client) -> None:
    body = (
        b'--zz\r\nContent-Disposition: form-data; name="file"; '
        b"filename*=UTF-8''%E6%BD%AE%E6%B1%90%20notes.txt\r\nContent-Type: text/plain\r\n\r\n"
        b"Tide notes: spring tides follow the full moon.\r\n"
        b'--zz\r\nContent-Disposition: form-data; name="file"; filename="fallback.txt"; '
        b"filename*=UTF-8''preferred%20name.txt\r\n\r\n"
        b"Neap tides follow the quarter moons.\r\n--zz--\r\n"
    )
    response = client.post(
        "/v1/documents", content=body, headers={"content-type": "multipart/form-data; boundary=zz"}
    )
    assert response.status_code == 200, response.text
    paths = [uploaded_name(r["path"]) for r in response.json()["results"]]
    assert paths == ["潮汐 notes.txt", "preferred name.txt"]


@pytest.mark.parametrize("path", ["/health", "/ready", "/v1/documents", "/v1/search?q=etna"])
def test_head_answers_like_get_without_a_body(client: httpx.Client, path: str) -> None:
    got = client.get(path)
    head = client.head(path)
    assert head.status_code == got.status_code == 200
    assert head.content == b""
    if "retrieve_ms" in got.json():  # a timing, whose digits vary between the two requests
        assert abs(int(head.headers["content-length"]) - len(got.content)) <= 4
    else:
        assert head.headers["content-length"] == got.headers["content-length"]
    assert head.headers["content-type"] == got.headers["content-type"]
    assert head.headers["x-request-id"]


def test_head_of_a_document_and_of_nothing(client: httpx.Client) -> None:
    doc_id = client.get("/v1/documents").json()["documents"][0]["id"]
    assert client.head(f"/v1/documents/{doc_id}").status_code == 200
    missing = client.head("/v1/documents/" + "0" * 64)
    assert missing.status_code == 404 and missing.content == b""


# --- 8. Host, Origin, content types and CORS ----------------------------------------------------


def test_a_foreign_host_is_refused(api: Running, client: httpx.Client) -> None:
    _, port = address(api)
    for host in ("evil.example", f"evil.example:{port}", "127.0.0.1.nip.io", "[::2]"):
        response = client.get("/health", headers={"host": host})
        body = assert_error(response, 400, "invalid_request")
        assert "KB_ALLOWED_HOSTS" in body["error"]["message"]
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", "LOCALHOST", "[::1]:1"):
        assert client.get("/health", headers={"host": host}).status_code == 200, host


def test_allowed_hosts_are_answered(strict: Running) -> None:
    with strict.client() as client:
        assert client.get("/health", headers={"host": "kb.example.com"}).status_code == 200
        assert client.get("/health", headers={"host": "KB.example.com:443"}).status_code == 200
        assert_error(client.get("/health", headers={"host": "example.com"}), 400, "invalid_request")


def test_cross_origin_writes_are_403(api: Running, client: httpx.Client) -> None:
    question = {"question": "Which volcano is on Sicily?"}
    for origin in ("https://evil.example", "null", "http://127.0.0.1:1", "file://"):
        response = client.post("/v1/ask", json=question, headers={"origin": origin})
        body = assert_error(response, 403, "forbidden")
        assert "KB_CORS_ORIGINS" in body["error"]["message"]
    evil = {"origin": "https://evil.example"}
    assert_error(client.delete("/v1/documents/" + "0" * 64, headers=evil), 403, "forbidden")
    files = [("file", ("x.txt", b"cross-site upload"))]
    assert_error(client.post("/v1/documents", files=files, headers=evil), 403, "forbidden")
    own = client.post("/v1/ask", json=question, headers={"origin": api.base_url})
    assert own.status_code == 200, own.text
    read = client.get("/v1/documents", headers=evil)  # reads are not refused, but carry no CORS
    assert read.status_code == 200
    assert not [h for h in read.headers if h.startswith("access-control-")]


def test_text_plain_json_is_415(client: httpx.Client) -> None:
    for content_type in (
        "text/plain",
        "text/plain;charset=UTF-8",
        None,
        "application/x-www-form-urlencoded",
    ):
        headers = {"content-type": content_type} if content_type else {}
        response = client.post("/v1/ask", content=b'{"question": "Etna?"}', headers=headers)
        assert_error(response, 415, "unsupported_type")
    ok = client.post(
        "/v1/ask",
        content=b'{"question": "Etna?"}',
        headers={"content-type": "application/json; charset=utf-8"},
    )
    assert ok.status_code == 200, ok.text


def test_cors_headers_only_for_the_configured_origin(strict: Running) -> None:
    with strict.client() as client:
        preflight = client.options(
            "/v1/ask",
            headers={
                "origin": APP_ORIGIN,
                "access-control-request-method": "POST",
                "access-control-request-headers": "content-type",
            },
        )
        assert preflight.status_code in (200, 204)
        assert preflight.headers["access-control-allow-origin"] == APP_ORIGIN
        asked = client.post(
            "/v1/ask", json={"question": "anything?"}, headers={"origin": APP_ORIGIN}
        )
        assert asked.status_code == 200, asked.text
        assert asked.headers["access-control-allow-origin"] == APP_ORIGIN
        other = client.options(
            "/v1/ask",
            headers={"origin": "https://evil.example", "access-control-request-method": "POST"},
        )
        assert other.headers.get("access-control-allow-origin") != "https://evil.example"
        denied = client.post(
            "/v1/ask", json={"question": "anything?"}, headers={"origin": "https://evil.example"}
        )
        assert_error(denied, 403, "forbidden")


# --- 9. what is logged is escaped -----------------------------------------------------------------


def test_a_newline_in_a_path_cannot_forge_a_log_line(
    client: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="kb")
    forged = "/v1/documents/abc%0a2026-01-01 00:00:00 INFO kb.api [x] GET /admin 200"
    client.get(forged)
    client.get("/v1/nothing%0d%0aFORGED%1b[31m")
    assert wait_until(lambda: sum("abc\\n2026" in r.getMessage() for r in caplog.records) >= 1)
    assert wait_until(
        lambda: any("nothing\\r\\nFORGED\\x1b" in r.getMessage() for r in caplog.records)
    )
    for record in caplog.records:
        if record.name.startswith("kb.api"):
            assert "\n" not in record.getMessage() and "\r" not in record.getMessage()
            assert "\x1b" not in record.getMessage()


def test_the_server_log_format_escapes_every_message() -> None:
    assert printable("a\nb\r\x1b[0m\\ \u2028 ok é") == "a\\nb\\r\\x1b[0m\\\\ \\u2028 ok é"
    record = logging.LogRecord("kb.api", logging.INFO, "x", 1, "got %s", ("x\nFORGED",), None)
    record.request_id = "-"
    assert EscapingFormatter("%(message)s").format(record) == "got x\\nFORGED"

"""The stand-in follows the wire contract (§10): checked with the real SDK and raw HTTP."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx
import pytest

from standin.pdfs import pdf_bytes, png_bytes

H = {"x-api-key": "sk-test", "anthropic-version": "2023-06-01"}
BETA = {**H, "anthropic-beta": "files-api-2025-04-14"}


@pytest.fixture
def client(standin: Any) -> Any:
    c = anthropic.Anthropic(api_key="sk-test", base_url=standin.base_url, max_retries=0)
    yield c
    c.close()


def _upload(client: Any, name: str, data: bytes, mime: str) -> str:
    return str(client.files.upload(file=(name, data, mime)).id)


def test_auth_and_version_headers(standin: Any) -> None:
    url = standin.base_url + "/v1/files"
    assert httpx.get(url, headers={"anthropic-version": "x"}).status_code == 401
    bearer = {"authorization": "Bearer k", "anthropic-version": "2026-10-21"}
    assert httpx.get(url, headers=bearer).status_code == 200
    missing = httpx.get(url, headers={"x-api-key": "k"})
    assert missing.status_code == 400
    body = missing.json()
    assert body["type"] == "error" and body["request_id"] == missing.headers["request-id"]


def test_upload_multipart_any_order_sniffed_type_and_basename(standin: Any) -> None:
    boundary = "b0undary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="a/b/report.pdf"\r\n\r\n'
        ).encode()
        + pdf_bytes(["x"])
        + (
            f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="expires_in_seconds"'
            f"\r\n\r\n3600\r\n--{boundary}--\r\n"
        ).encode()
    )
    headers = {**H, "content-type": f"multipart/form-data; boundary={boundary}"}
    meta = httpx.post(standin.base_url + "/v1/files", headers=headers, content=body).json()
    assert meta["filename"] == "report.pdf"
    assert meta["mime_type"] == "application/pdf"  # sniffed: the part declared no type
    assert meta["expires_at"] is not None and meta["id"].startswith("file_")
    # the legacy dialect requires the part type and returns no expires_at
    legacy = httpx.post(
        standin.base_url + "/v1/files",
        headers={**BETA, "content-type": headers["content-type"]},
        content=body,
    )
    assert legacy.status_code == 400


def test_list_in_both_dialects(client: Any, standin: Any) -> None:
    ids = [_upload(client, f"f{n}.txt", b"text", "text/plain") for n in range(5)]
    newest_first = ids[::-1]
    assert [f.id for f in client.files.list(limit=2)] == newest_first  # GA auto-pagination
    url = standin.base_url + "/v1/files"
    assert httpx.get(url, params={"after_id": ids[0]}, headers=H).status_code == 400
    page = httpx.get(url, params={"limit": 2}, headers=BETA).json()
    assert page["has_more"] and "next_page" not in page and "expires_at" not in page["data"][0]
    nxt = httpx.get(url, params={"limit": 2, "after_id": page["last_id"]}, headers=BETA).json()
    assert [f["id"] for f in page["data"] + nxt["data"]] == newest_first[:4]
    chosen = client.files.list(ids=[ids[1], ids[3], "file_gone"])
    assert sorted(f.id for f in chosen) == sorted([ids[1], ids[3]])


def test_metadata_delete_content_limits(client: Any, standin: Any) -> None:
    file_id = _upload(client, "n.txt", b"hello", "text/plain")
    assert client.files.retrieve_metadata(file_id).size_bytes == 5
    with pytest.raises(anthropic.BadRequestError) as info:
        client.files.download(file_id)
    assert info.value.error_code == "file_not_downloadable"
    client.files.delete(file_id)
    with pytest.raises(anthropic.NotFoundError):
        client.files.retrieve_metadata(file_id)
    standin.state.max_file_bytes = 3
    with pytest.raises(anthropic.APIStatusError) as too_big:
        _upload(client, "n.txt", b"hello", "text/plain")
    assert too_big.value.status_code == 413
    standin.state.max_file_bytes, standin.state.storage_quota = 100, 4
    with pytest.raises(anthropic.BadRequestError, match="quota"):
        _upload(client, "n.txt", b"hello", "text/plain")


def _ask(client: Any, blocks: list[dict[str, Any]]) -> Any:
    content = [*blocks, {"type": "text", "text": "What colour is the tower?"}]
    return client.messages.create(
        model="claude-sonnet-5-5",
        max_tokens=100,
        messages=[{"role": "user", "content": content}],
    )


def _doc(file_id: str, citations: bool = True) -> dict[str, Any]:
    return {
        "type": "document",
        "source": {"type": "file", "file_id": file_id},
        "citations": {"enabled": citations},
    }


def test_messages_validate_blocks(client: Any, standin: Any) -> None:
    pdf = _upload(client, "p.pdf", pdf_bytes(["x", "The tower is green."]), "application/pdf")
    png = _upload(client, "i.png", png_bytes(), "image/png")
    txt = _upload(client, "t.txt", b"The tower is red.", "text/plain")
    with pytest.raises(anthropic.NotFoundError):
        _ask(client, [_doc("file_unknown")])
    with pytest.raises(anthropic.BadRequestError, match="Unsupported document file format"):
        _ask(client, [_doc(png)])
    with pytest.raises(anthropic.BadRequestError):
        _ask(client, [{"type": "image", "source": {"type": "file", "file_id": pdf}}])
    with pytest.raises(anthropic.BadRequestError, match="all or none"):
        _ask(client, [_doc(pdf), _doc(txt, citations=False)])
    standin.state.max_pdf_pages = 1
    with pytest.raises(anthropic.BadRequestError, match="maximum of 1 PDF pages"):
        _ask(client, [_doc(pdf)])
    standin.state.max_pdf_pages, standin.state.max_body_bytes = 100, 1000
    with pytest.raises(anthropic.APIStatusError) as info:
        _ask(client, [{"type": "text", "text": "x" * 2000}])
    assert info.value.status_code == 413


def test_messages_answer_with_real_citations_and_cache(client: Any) -> None:
    pdf = _upload(client, "p.pdf", pdf_bytes(["x", "The tower is green."]), "application/pdf")
    txt = _upload(client, "t.txt", b"Intro. The tower is red.", "text/plain")
    image = {
        "type": "image",
        "source": {"type": "file", "file_id": _upload(client, "i.png", png_bytes(), "image/png")},
    }
    blocks = [_doc(pdf), image, {**_doc(txt), "cache_control": {"type": "ephemeral"}}]
    first = _ask(client, blocks)
    cites = {c.type: c for b in first.content for c in (b.citations or [])}
    page, char = cites["page_location"], cites["char_location"]
    assert (page.start_page_number, page.end_page_number, page.document_index) == (2, 3, 0)
    assert page.cited_text == "The tower is green."
    assert (char.start_char_index, char.end_char_index, char.document_index) == (7, 24, 1)
    assert first.usage.cache_creation_input_tokens > 0 and first.usage.cache_read_input_tokens == 0
    second = _ask(client, blocks)
    assert second.usage.cache_read_input_tokens == first.usage.cache_creation_input_tokens
    assert second.usage.cache_creation_input_tokens == 0


def test_sse_has_event_lines(client: Any, standin: Any) -> None:
    txt = _upload(client, "t.txt", b"The tower is red.", "text/plain")
    body = {
        "model": "m",
        "max_tokens": 10,
        "stream": True,
        "messages": [
            {
                "role": "user",
                "content": [_doc(txt), {"type": "text", "text": "What colour is the tower?"}],
            }
        ],
    }
    raw = httpx.post(standin.base_url + "/v1/messages", headers=H, json=body)
    assert raw.headers["content-type"] == "text/event-stream"
    events = [e for e in raw.text.split("\n\n") if e]
    names = [e.split("\n")[0].removeprefix("event: ") for e in events]
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    assert "citations_delta" in raw.text
    for event in events:
        name, data = event.split("\n")
        assert f'"type": "{name.removeprefix("event: ")}"' in data

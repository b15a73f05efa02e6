"""Questions answered through the real anthropic SDK, talking HTTP to the stand-in."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from standin.pdfs import make_pdf
from tests.api.conftest import Running, serve, upload
from tests.api.test_ask import parse_sse
from tests.api.test_service import assert_error


@pytest.fixture
def online(online_settings: Any, embedder: Any, tmp_path: Any) -> Iterator[Running]:
    running = serve(online_settings, embedder)
    pdf = make_pdf(
        tmp_path / "etna.pdf",
        ["An introduction to volcanoes.", "Mount Etna erupted in 2021 with lava fountains."],
    )
    try:
        with running.client() as client:
            response = upload(client, {"etna.pdf": pdf.read_bytes()})
            assert response.status_code == 200, response.text
            assert response.json()["results"][0]["status"] == "added"
        yield running
    finally:
        running.stop()


def test_ask_through_claude_cites_the_original_page(online: Running, standin: Any) -> None:
    with online.client() as client:
        assert client.get("/ready").json()["answered_by"] == "claude"
        doc = client.get("/v1/documents").json()["documents"][0]
        assert doc["file_store"] == "anthropic" and doc["file_ids"][0].startswith("file_")
        response = client.post("/v1/ask", json={"question": "When did Mount Etna erupt?"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["answered_by"] == "claude"
    assert "2021" in body["answer"]
    assert body["documents"][0]["file_id"] == doc["file_ids"][0]
    citation = body["citations"][0]
    assert citation["document_id"] == doc["id"]
    assert citation["page_start"] == 2 and citation["page_end"] == 2
    assert "Etna" in citation["cited_text"]
    assert body["usage"]["input_tokens"] > 0 and body["usage"]["output_tokens"] > 0
    assert body["timings"]["model_ms"] > 0
    sent_doc = body["documents"][0]
    assert (sent_doc["page_start"], sent_doc["page_end"], sent_doc["pages"]) == (1, 2, 2)
    assert body["pages_sent"] == 2 and sent_doc["estimated_tokens"] == 2 * 2000
    assert body["estimated_input_tokens"] > sent_doc["estimated_tokens"]
    assert body["estimated_cost_usd"] > 0
    sent = standin.requests("POST", "/v1/messages")
    assert sent, "the answer did not come from the Messages API"


def test_stream_through_claude(online: Running) -> None:
    with (
        online.client() as client,
        client.stream("POST", "/v1/ask/stream", json={"question": "When did Etna erupt?"}) as r,
    ):
        assert r.status_code == 200
        events = parse_sse(r.read().decode())
    names = [name for name, _ in events]
    assert names[-1] == "done" and "delta" in names and "citation" in names
    done = events[-1][1]
    assert done["answered_by"] == "claude"
    assert done["usage"]["output_tokens"] > 0
    assert done["answer"] == "".join(d["text"] for n, d in events if n == "delta")


@pytest.mark.parametrize(("status", "code"), [(429, "rate_limited"), (500, "upstream_error")])
def test_upstream_errors_map_to_statuses(
    online: Running, standin: Any, status: int, code: str
) -> None:
    standin.inject("/v1/messages", status=status, times=10, headers={"retry-after": "0"})
    with online.client() as client:
        response = client.post("/v1/ask", json={"question": "When did Etna erupt?"})
    body = assert_error(response, 429 if status == 429 else 502, code)
    assert "Traceback" not in body["error"]["message"]

"""`/v1/ask`, `/v1/ask/stream` (SSE) and `/v1/search` against the offline (extractive) backend."""

from __future__ import annotations

import json

import httpx

from tests.api.conftest import is_upload, source_of
from tests.api.test_service import assert_error


def parse_sse(text: str) -> list[tuple[str, dict]]:
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        name, data = None, []
        for line in block.split("\n"):
            if line.startswith("event: "):
                name = line[len("event: ") :]
            elif line.startswith("data: "):
                data.append(line[len("data: ") :])
        if name is not None:
            events.append((name, json.loads("\n".join(data))))
    return events


def test_ask_offline_answers_extractively_with_citations(client: httpx.Client) -> None:
    response = client.post("/v1/ask", json={"question": "Which volcano is on Sicily?"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["answered_by"] == "extractive"
    assert body["notice"]
    assert body["documents"][0]["title"] == "Volcanoes"
    assert body["documents"][0]["file_id"] is None  # nothing was sent to a model
    citation = body["citations"][0]
    assert is_upload(citation["source"], "volcanoes.md")
    assert "Etna" in citation["cited_text"]
    assert citation["char_start"] is not None and citation["char_end"] > citation["char_start"]
    assert body["usage"]["input_tokens"] == 0
    assert body["timings"]["retrieve_ms"] > 0
    assert body["timings"]["model_ms"] >= 0


def test_ask_respects_max_documents_and_filters(client: httpx.Client) -> None:
    one = client.post("/v1/ask", json={"question": "Sicily", "max_documents": 1}).json()
    assert len({d["id"] for d in one["documents"]}) == 1
    filtered = client.post(
        "/v1/ask",
        json={"question": "Sicily", "filters": {"source_prefix": source_of(client, "chess.md")}},
    ).json()
    assert {d["title"] for d in filtered["documents"]} == {"Chess openings"}
    by_kind = client.post("/v1/ask", json={"question": "Sicily", "filters": {"kind": "pdf"}}).json()
    assert by_kind["documents"] == []


def test_ask_validation_names_the_field(client: httpx.Client) -> None:
    missing = assert_error(client.post("/v1/ask", json={}), 400, "invalid_request")
    assert "question" in missing["error"]["message"]
    wrong_type = assert_error(client.post("/v1/ask", json={"question": 5}), 400, "invalid_request")
    assert "question" in wrong_type["error"]["message"]
    too_long = assert_error(
        client.post("/v1/ask", json={"question": "x" * 2001}), 400, "invalid_request"
    )
    assert "question" in too_long["error"]["message"]
    blank = assert_error(client.post("/v1/ask", json={"question": "   "}), 400, "invalid_request")
    assert "question" in blank["error"]["message"]
    too_many = assert_error(
        client.post("/v1/ask", json={"question": "q", "max_documents": 99}), 400, "invalid_request"
    )
    assert "max_documents" in too_many["error"]["message"]
    bad_kind = assert_error(
        client.post("/v1/ask", json={"question": "q", "filters": {"kind": "video"}}),
        400,
        "invalid_request",
    )
    assert "kind" in bad_kind["error"]["message"]


def test_ask_stream_sends_deltas_citations_and_done(client: httpx.Client) -> None:
    with client.stream("POST", "/v1/ask/stream", json={"question": "sourdough starter"}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        events = parse_sse(r.read().decode())
    names = [name for name, _ in events]
    assert names[-1] == "done"
    assert "delta" in names and "citation" in names
    text = "".join(data["text"] for name, data in events if name == "delta")
    done = events[-1][1]
    assert done["answer"] == text
    assert done["answered_by"] == "extractive"
    assert "usage" in done and "timings" in done
    assert any(
        is_upload(data["source"], "bread.txt") for name, data in events if name == "citation"
    )


def test_ask_stream_validates_before_streaming(client: httpx.Client) -> None:
    assert_error(client.post("/v1/ask/stream", json={"question": ""}), 400, "invalid_request")


def test_search_ranks_documents_with_chunks(client: httpx.Client) -> None:
    for mode in ("dense", "bm25", "hybrid"):
        response = client.get("/v1/search", params={"q": "wild yeast bread", "k": 2, "mode": mode})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["mode"] == mode and body["k"] == 2
        assert 1 <= len(body["results"]) <= 2
        top = body["results"][0]
        assert is_upload(top["document"]["source"], "bread.txt")
        assert top["chunks"] and "yeast" in top["chunks"][0]["text"]


def test_search_limits(client: httpx.Client) -> None:
    body = assert_error(
        client.get("/v1/search", params={"q": "x", "k": 11}), 400, "invalid_request"
    )
    assert "k" in body["error"]["message"]
    body = assert_error(client.get("/v1/search", params={"q": "x", "k": 0}), 400, "invalid_request")
    assert_error(
        client.get("/v1/search", params={"q": "x", "mode": "fuzzy"}), 400, "invalid_request"
    )
    body = assert_error(client.get("/v1/search"), 400, "invalid_request")
    assert "q" in body["error"]["message"]
    assert_error(client.get("/v1/search", params={"q": "y" * 2001}), 400, "invalid_request")
    assert_error(client.get("/v1/search", params={"q": "x", "k": "many"}), 400, "invalid_request")

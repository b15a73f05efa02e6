"""Questions answered through the real anthropic SDK, talking HTTP to the stand-in."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from standin.pdfs import make_pdf
from tests.api.conftest import API_KEY, Running, serve, upload
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


UPSTREAM_FAULTS = [
    # Anthropic's status and error type -> what the API client sees
    (429, "rate_limit_error", 429, "rate_limited"),
    (500, "api_error", 502, "upstream_error"),
    (401, "authentication_error", 502, "upstream_auth_error"),
    (403, "permission_error", 502, "upstream_auth_error"),
    (400, "invalid_request_error", 502, "upstream_rejected"),
    (404, "not_found_error", 502, "upstream_not_found"),
    (504, "timeout_error", 504, "upstream_timeout"),
]


@pytest.mark.parametrize(("status", "error_type", "expected", "code"), UPSTREAM_FAULTS)
def test_upstream_errors_map_to_statuses(
    online: Running, standin: Any, status: int, error_type: str, expected: int, code: str
) -> None:
    """What Anthropic refuses is never the client's own 401 or 400."""
    standin.inject(
        "/v1/messages",
        status=status,
        error_type=error_type,
        times=10,
        headers={"retry-after": "0"},
    )
    with online.client() as client:
        response = client.post("/v1/ask", json={"question": "When did Etna erupt?"})
    body = assert_error(response, expected, code)
    assert "Traceback" not in body["error"]["message"]
    assert "www-authenticate" not in response.headers


def test_anthropic_rejecting_kbs_key_is_a_502_for_the_client(online: Running, standin: Any) -> None:
    standin.app.api_keys = {"sk-other"}  # kb's ANTHROPIC_API_KEY is no longer valid
    with online.client() as client:
        response = client.post("/v1/ask", json={"question": "When did Etna erupt?"})
        with client.stream("POST", "/v1/ask/stream", json={"question": "Etna?"}) as r:
            events = parse_sse(r.read().decode())
    body = assert_error(response, 502, "upstream_auth_error")
    assert "www-authenticate" not in response.headers
    assert "Anthropic rejected kb's API key" in body["error"]["message"]
    assert "check ANTHROPIC_API_KEY" in body["error"]["message"]
    name, error = events[-1]
    assert name == "error" and error["error"]["type"] == "upstream_auth_error"


def test_only_the_clients_own_key_is_a_401(
    online_settings: Any, embedder: Any, standin: Any
) -> None:
    """Both keys bad: the client's key is the client's 401 with a challenge; kb's key, which
    Anthropic refuses on the upload, is that file's failure (one file's upload error never
    ends a batch), never a challenge to the client."""
    running = serve(online_settings.replace(api_keys=(API_KEY,)), embedder)
    standin.app.api_keys = {"sk-other"}
    try:
        with running.client() as anonymous, running.client(key="wrong") as wrong:
            for client in (anonymous, wrong):
                refused = upload(client, {"notes.txt": b"Mount Etna erupted in 2021."})
                assert_error(refused, 401, "unauthorized")
                assert refused.headers["www-authenticate"] == "Bearer"
        with running.client(key=API_KEY) as client:
            response = upload(client, {"notes.txt": b"Mount Etna erupted in 2021."})
    finally:
        running.stop()
    assert response.status_code == 200 and "www-authenticate" not in response.headers
    (result,) = response.json()["results"]
    assert result["status"] == "failed" and "Anthropic rejected kb's API key" in result["reason"]
    assert "check ANTHROPIC_API_KEY" in result["reason"]
    assert [r.status for r in standin.log] == [401]  # the refusal was Anthropic's


@pytest.mark.parametrize(
    ("status", "code"), [(404, "upstream_not_found"), (400, "upstream_rejected")]
)
def test_a_model_anthropic_refuses_is_a_502_for_the_client(
    online: Running, standin: Any, status: int, code: str
) -> None:
    """A bad KB_CLAUDE_MODEL: Anthropic answers kb 404 (or 400), and the client, whose
    request was fine, gets a 502 that names the setting."""
    standin.state.models = {"claude-other"}
    standin.state.quirks.unknown_model_status = status
    uploads = len(standin.requests("POST", "/v1/files"))
    with online.client() as client:
        response = client.post("/v1/ask", json={"question": "When did Etna erupt?"})
    body = assert_error(response, 502, code)
    assert "model: claude-" in body["error"]["message"]
    assert "check KB_CLAUDE_MODEL" in body["error"]["message"]
    assert "www-authenticate" not in response.headers
    assert len(standin.requests("POST", "/v1/messages")) == 1  # not retried
    assert len(standin.requests("POST", "/v1/files")) == uploads  # nothing re-uploaded

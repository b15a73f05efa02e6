"""`/v1/batches` over HTTP against the real app: offline (answered before the POST returns)
and online (Message Batches at the stand-in, with the real SDK), same auth and errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from kb.settings import Settings
from standin.pdfs import make_pdf
from tests.api.conftest import Running, serve, upload
from tests.api.test_service import assert_error

QUESTIONS = {
    "questions": [
        {"id": "etna", "question": "When did Mount Etna erupt?"},
        {"question": "What was erupting at Etna?", "filters": {"kind": "pdf"}},
    ]
}


def _lines(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.headers["content-type"].startswith("application/x-ndjson")
    return [json.loads(line) for line in response.text.splitlines()]


@pytest.fixture
def online(online_settings: Any, embedder: Any, tmp_path: Any) -> Iterator[Running]:
    running = serve(online_settings.replace(api_keys=("k1",)), embedder)
    pdf = make_pdf(tmp_path / "etna.pdf", ["Volcanoes.", "Mount Etna erupted in 2021."])
    try:
        with running.client(key="k1") as client:
            assert upload(client, {"etna.pdf": pdf.read_bytes()}).status_code == 200
        yield running
    finally:
        running.stop()


def test_questions_in_a_batch_id_out_then_status_and_results(online: Running, standin: Any) -> None:
    standin.state.batch_hold = True
    with online.client(key="k1") as client:
        created = client.post("/v1/batches", json=QUESTIONS)
        assert created.status_code == 202, created.text
        job = created.json()
        assert job["status"] == "in_progress" and job["answered_by"] == "claude"
        assert job["questions"] == 2 and job["answered"] == 0
        (batch,) = job["batches"]
        assert batch["id"] in standin.state.batches and batch["requests"] == 2
        assert batch["request_counts"]["processing"] == 2
        assert _lines(client.get(f"/v1/batches/{job['id']}/results")) == []
        # the same questions again: the same job, nothing sent twice
        assert client.post("/v1/batches", json=QUESTIONS).json()["id"] == job["id"]
        standin.state.batch_hold = False
        status = client.get(f"/v1/batches/{job['id']}").json()
        assert status["status"] == "ended" and status["answered"] == 2
        assert status["batches"][0]["request_counts"]["succeeded"] == 2
        lines = _lines(client.get(f"/v1/batches/{job['id']}/results"))
    assert len(standin.requests("POST", "/v1/messages/batches")) == 1
    assert sorted(line["line"] for line in lines) == [1, 2]
    etna = next(line for line in lines if line["id"] == "etna")
    assert "2021" in etna["answer"] and etna["citations"][0]["page_start"] == 2
    assert etna["usage"]["cost_usd"] > 0 and etna["batch_id"] == batch["id"]


def test_same_auth_and_errors_as_the_rest(online: Running) -> None:
    with online.client() as anonymous:
        assert_error(anonymous.post("/v1/batches", json=QUESTIONS), 401, "unauthorized")
        assert_error(anonymous.get("/v1/batches/job_0"), 401, "unauthorized")
    with online.client(key="k1") as client:
        assert_error(client.get("/v1/batches/job_0123abcd"), 404, "not_found")
        assert_error(client.get("/v1/batches/nope/results"), 404, "not_found")
        assert_error(client.post("/v1/batches", json={"questions": []}), 400, "invalid_request")
        blank = {"questions": [{"question": "ok?"}, {"question": "  \u200b "}]}
        body = assert_error(client.post("/v1/batches", json=blank), 400, "invalid_request")
        assert "questions[1].question" in body["error"]["message"]
        extra = {"questions": [{"question": "ok?", "model": "x"}]}
        assert_error(client.post("/v1/batches", json=extra), 400, "invalid_request")


def test_offline_the_answers_are_written_before_the_post_returns(
    tmp_path: Any, embedder: Any
) -> None:
    running = serve(Settings(data_dir=tmp_path / "kbdata"), embedder)
    pdf = make_pdf(tmp_path / "etna.pdf", ["Volcanoes.", "Mount Etna erupted in 2021."])
    try:
        with running.client() as client:
            assert upload(client, {"etna.pdf": pdf.read_bytes()}).status_code == 200
            job = client.post("/v1/batches", json=QUESTIONS).json()
            assert job["status"] == "ended" and job["answered_by"] == "extractive"
            assert job["batches"] == [] and job["answered"] == 2
            lines = _lines(client.get(f"/v1/batches/{job['id']}/results"))
    finally:
        running.stop()
    assert [line["answered_by"] for line in lines] == ["extractive", "extractive"]
    assert lines[0]["citations"][0]["page_start"] == 2

"""Health, readiness, the OpenAPI schema and docs, request ids and the error shape."""

from __future__ import annotations

import httpx

from tests.api.conftest import Running


def assert_error(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "request_id"}
    assert body["error"]["type"] == code
    assert body["error"]["message"]
    assert body["request_id"] == response.headers["x-request-id"]
    return body


def test_health(client: httpx.Client) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["x-request-id"]


def test_ready_reports_backends(client: httpx.Client) -> None:
    body = client.get("/ready").json()
    assert body["ready"] is True
    assert body["chroma"] is True
    assert body["model"] == "all-MiniLM-L6-v2"
    assert body["answered_by"] == "extractive"
    assert body["documents"] >= 3


def test_openapi_schema_and_docs_page(client: httpx.Client) -> None:
    schema = client.get("/schema/openapi.json").json()
    assert {"/v1/ask", "/v1/ask/stream", "/v1/search", "/v1/documents"} <= set(schema["paths"])
    assert "/v1/documents/{doc_id}" in schema["paths"]
    docs = client.get("/schema/swagger")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()


def test_request_id_is_echoed_or_created(client: httpx.Client) -> None:
    sent = client.get("/health", headers={"x-request-id": "abc-123"})
    assert sent.headers["x-request-id"] == "abc-123"
    hostile = client.get("/health", headers={"x-request-id": "x" * 500})
    assert len(hostile.headers["x-request-id"]) == 32
    a, b = client.get("/health"), client.get("/health")
    assert a.headers["x-request-id"] != b.headers["x-request-id"]


def test_unknown_route_is_404_in_the_error_shape(client: httpx.Client) -> None:
    assert_error(client.get("/v1/nothing-here"), 404, "not_found")


def test_wrong_method_is_405(client: httpx.Client) -> None:
    assert_error(client.put("/v1/search"), 405, "method_not_allowed")


def test_malformed_json_is_400(client: httpx.Client) -> None:
    response = client.post(
        "/v1/ask", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert_error(response, 400, "invalid_request")


def test_oversized_json_body_is_413(client: httpx.Client) -> None:
    response = client.post("/v1/ask", json={"question": "x" * (2 * 1024 * 1024)})
    assert_error(response, 413, "too_large")


def test_internal_errors_are_generic(api: Running, client: httpx.Client, monkeypatch) -> None:
    kb = api.app.state.kb

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret detail /etc/shadow")

    monkeypatch.setattr(kb.retriever, "search_many", boom)
    response = client.get("/v1/search", params={"q": "volcano"})
    body = assert_error(response, 500, "internal_error")
    assert "secret" not in response.text
    assert "Traceback" not in response.text
    assert body["error"]["message"] == "Internal server error."

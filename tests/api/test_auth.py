"""API keys on every `/v1` route; `kb serve` refuses a public address without keys."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from api.auth import bearer_token, key_matches
from api.cli import curl_example, is_loopback
from kb.settings import Settings
from tests.api.conftest import API_KEY, Running, serve
from tests.api.test_service import assert_error


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Iterator[Running]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("secured") / "kbdata", api_keys=("other-key", API_KEY)
    )
    running = serve(settings, embedder)
    yield running
    running.stop()


V1_CALLS = [
    ("GET", "/v1/search?q=hello", None),
    ("POST", "/v1/ask", {"question": "hello"}),
    ("POST", "/v1/ask/stream", {"question": "hello"}),
    ("GET", "/v1/documents", None),
    ("GET", "/v1/documents/abc", None),
    ("DELETE", "/v1/documents/abc", None),
    ("POST", "/v1/documents", None),
]


@pytest.mark.parametrize(("method", "path", "body"), V1_CALLS)
def test_v1_routes_need_a_key(secured: Running, method: str, path: str, body: Any) -> None:
    with secured.client() as anonymous, secured.client(key="wrong-key") as wrong:
        for client in (anonymous, wrong):
            response = client.request(method, path, json=body)
            assert_error(response, 401, "unauthorized")
            assert response.headers["www-authenticate"] == "Bearer"


def test_valid_key_is_accepted(secured: Running) -> None:
    with secured.client(key=API_KEY) as client:
        assert client.get("/v1/search", params={"q": "hello"}).status_code == 200
        assert client.get("/v1/documents").json()["total"] == 0
        assert_error(client.get("/v1/documents/abc"), 404, "not_found")
    with secured.client() as client:
        scheme_only = client.get("/v1/documents", headers={"Authorization": "Bearer"})
        assert_error(scheme_only, 401, "unauthorized")
        basic = client.get("/v1/documents", headers={"Authorization": f"Basic {API_KEY}"})
        assert_error(basic, 401, "unauthorized")


def test_health_ready_and_docs_stay_open(secured: Running) -> None:
    with secured.client() as client:
        assert client.get("/health").status_code == 200
        assert client.get("/ready").status_code == 200
        schema = client.get("/schema/openapi.json").json()
        assert "bearer" in schema["components"]["securitySchemes"]


def test_helpers() -> None:
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("bearer  abc ") == "abc"
    assert bearer_token("Token abc") is None
    assert bearer_token(None) is None
    assert key_matches("b", ("a", "b"))
    assert not key_matches("c", ("a", "b"))
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.1.2.3")
    assert "Authorization" in curl_example("http://h:1", True)
    assert "Authorization" not in curl_example("http://h:1", False)


def test_serve_refuses_public_bind_without_keys(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from kb.cli import main

    monkeypatch.chdir(tmp_path)  # no .env here
    monkeypatch.delenv("KB_API_KEYS", raising=False)
    monkeypatch.setenv("KB_DATA_DIR", str(tmp_path / "kbdata"))
    assert main(["serve", "--host", "0.0.0.0", "--port", "1"]) == 2
    err = capsys.readouterr().err
    assert "KB_API_KEYS" in err and "0.0.0.0" in err

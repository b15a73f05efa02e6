"""The OpenAPI document is the API: requests generated from it (hypothesis over the document
the server publishes), valid and not, never get a 5xx, and every response has a status the
document declares for its operation, the declared media type, and a body its schema accepts.

Bodies and parameters are drawn from the document's own schemas (`from_schema` reads the
JSON Schema the document uses), mixed with arbitrary values; the multipart upload is built from
the document's multipart schema; the event stream is checked as `text/event-stream` events.
Each operation runs a bounded number of examples."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kb.settings import Settings
from standin.pdfs import pdf_bytes
from tests.api.conftest import CORPUS, Running, serve, upload

OPERATIONS = [
    ("/health", "get"),
    ("/ready", "get"),
    ("/v1/ask", "post"),
    ("/v1/ask/stream", "post"),
    ("/v1/search", "get"),
    ("/v1/documents", "get"),
    ("/v1/documents", "post"),
    ("/v1/documents/{doc_id}", "get"),
    ("/v1/documents/{doc_id}", "delete"),
    ("/v1/documents/{doc_id}", "put"),
    ("/v1/documents/{doc_id}/original", "get"),
    ("/v1/batches", "post"),
    ("/v1/batches/{job_id}", "get"),
    ("/v1/batches/{job_id}/results", "get"),
]
EXAMPLES = {
    ("/v1/documents", "post"): 10,
    ("/v1/documents/{doc_id}", "delete"): 10,
    ("/v1/documents/{doc_id}", "put"): 10,
    ("/v1/batches", "post"): 10,
}
ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=10,
)
QUERY_TEXT = st.text(max_size=12)


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Iterator[Running]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("fuzz") / "kbdata",
        max_upload_bytes=64 * 1024,
        max_k=8,
        max_documents=3,
        max_question_chars=300,
    )
    running = serve(settings, embedder)
    try:
        with running.client() as client:
            assert upload(client, CORPUS).status_code == 200
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def document(fuzzed: Running) -> dict[str, Any]:
    with fuzzed.client() as client:
        response = client.get("/schema/openapi.json")
    assert response.status_code == 200
    return response.json()  # type: ignore[no-any-return]


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """A schema whose `#/components/...` references resolve inside itself."""
    return {**schema, "components": document["components"]}


def inline(document: dict[str, Any], schema: Any) -> Any:
    """The schema with every `$ref` replaced by what it names (for generating values)."""
    if isinstance(schema, dict):
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            return inline(document, document["components"]["schemas"][name])
        return {k: inline(document, v) for k, v in schema.items()}
    if isinstance(schema, list):
        return [inline(document, v) for v in schema]
    return schema


def from_schema(schema: dict[str, Any]) -> st.SearchStrategy:
    """Values valid for `schema`, for the JSON Schema the document uses (refs inlined)."""
    if "oneOf" in schema:
        return st.one_of([from_schema(s) for s in schema["oneOf"]])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if isinstance(kind, list):
        return st.one_of([from_schema({**schema, "type": k}) for k in kind])
    if kind == "null":
        return st.none()
    if kind == "boolean":
        return st.booleans()
    if kind == "integer":
        low, high = schema.get("minimum"), schema.get("maximum")
        return st.integers(None if low is None else int(low), None if high is None else int(high))
    if kind == "string":
        return st.text(min_size=schema.get("minLength", 0), max_size=schema.get("maxLength", 60))
    if kind == "array":
        return st.lists(from_schema(schema.get("items", {})), max_size=3)
    if kind == "object":
        properties = schema.get("properties", {})
        required = set(schema.get("required", []))
        return st.fixed_dictionaries(
            {k: from_schema(v) for k, v in properties.items() if k in required},
            optional={k: from_schema(v) for k, v in properties.items() if k not in required},
        )
    return ANY_JSON


def test_the_document_lists_exactly_the_operations_fuzzed(document: dict[str, Any]) -> None:
    found = {
        (path, method)
        for path, item in document["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    }
    assert found == set(OPERATIONS)


def check_response(
    document: dict[str, Any], path: str, method: str, response: httpx.Response, head: bool = False
) -> None:
    operation = document["paths"][path][method]
    status = response.status_code
    assert status < 500, f"{method.upper()} {response.request.url}: {status} {response.text}"
    declared = operation["responses"].get(str(status)) or operation["responses"].get("default")
    assert declared is not None, f"{status} is not declared for {method.upper()} {path}"
    if head or not declared.get("content"):
        return
    media = response.headers.get("content-type", "").split(";")[0].strip()
    assert media in declared["content"], f"{status} {media} not declared for {path}"
    schema = declared["content"][media].get("schema")
    if media == "text/event-stream":
        events = [b for b in response.text.replace("\r\n", "\n").split("\n\n") if b.strip()]
        names = [line.removeprefix("event: ") for b in events for line in b.split("\n")]
        assert events and any(n in ("done", "error") for n in names)
        return
    if media == "application/x-ndjson":
        assert all(isinstance(json.loads(line), dict) for line in response.text.splitlines())
        return
    if schema and media == "application/json":
        jsonschema.validate(response.json(), resolve(document, schema))


def query_values(document: dict[str, Any], operation: dict[str, Any]) -> st.SearchStrategy:
    """Each query parameter from its schema (or, sometimes, any text), or absent."""
    fields = {}
    for parameter in operation.get("parameters", []):
        if parameter["in"] != "query":
            continue
        valid = from_schema(inline(document, parameter["schema"]))
        value = st.one_of(valid, valid, QUERY_TEXT).map(
            lambda v: json.dumps(v) if isinstance(v, bool) else str(v)
        )
        fields[parameter["name"]] = value if parameter.get("required") else st.none() | value
    return st.fixed_dictionaries(fields).map(
        lambda d: {k: v for k, v in d.items() if v is not None}
    )


def json_body(document: dict[str, Any], operation: dict[str, Any]) -> st.SearchStrategy:
    schema = inline(document, operation["requestBody"]["content"]["application/json"]["schema"])
    valid = from_schema(schema).map(json.dumps)
    return st.one_of(valid, valid, valid, ANY_JSON.map(json.dumps), st.sampled_from(["", "{"]))


def multipart_files(document: dict[str, Any], operation: dict[str, Any]) -> st.SearchStrategy:
    schema = operation["requestBody"]["content"]["multipart/form-data"]["schema"]
    fields = sorted(schema["properties"])
    names = st.text(min_size=0, max_size=40) | st.sampled_from(
        ["notes.txt", "a.md", "r.pdf", "../../x.txt", "報告" * 60 + ".txt", "img.png", "x.exe"]
    )
    contents = st.sampled_from(
        [
            b"Tide tables for the harbour.",
            b"",
            b"\x00\x01binary",
            pdf_bytes(["Harbour dues are paid monthly."]),
            b"%PDF-1.4 broken",
        ]
    ) | st.binary(max_size=200)
    part = st.tuples(st.sampled_from([*fields, "other"]), names, contents)
    most = min(schema["properties"][f].get("maxItems", 3) for f in fields)
    return st.lists(part, min_size=0, max_size=most)


@pytest.mark.parametrize(("path", "method"), OPERATIONS, ids=[f"{m} {p}" for p, m in OPERATIONS])
def test_generated_requests_get_declared_answers(
    fuzzed: Running, document: dict[str, Any], path: str, method: str
) -> None:
    operation = document["paths"][path][method]
    with fuzzed.client() as client:
        known = [d["id"] for d in client.get("/v1/documents").json()["documents"]]
        if not known:  # an earlier operation's run (DELETE) may have removed them all
            assert upload(client, {"tides.txt": b"Tide tables for the harbour."}).is_success
            known = [d["id"] for d in client.get("/v1/documents").json()["documents"]]
        if "{job_id}" in path:  # a job's id stands where the path names one
            asked = client.post("/v1/batches", json={"questions": [{"question": "Tides?"}]})
            known = [asked.json()["id"]]
    doc_ids = st.sampled_from(known) | st.text(min_size=1, max_size=70).filter(
        lambda s: "/" not in s and s not in (".", "..")
    )
    if "requestBody" not in operation:
        body: st.SearchStrategy = st.none()
    elif "multipart/form-data" in operation["requestBody"]["content"]:
        body = multipart_files(document, operation)
    else:
        body = json_body(document, operation)
    content_types = st.sampled_from(["application/json"] * 4 + ["text/plain", ""])
    seen: list[int] = []

    @settings(
        max_examples=EXAMPLES.get((path, method), 30),
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(
        query=query_values(document, operation),
        doc_id=doc_ids,
        payload=body,
        content_type=content_types,
        head=st.booleans(),
    )
    def run(
        query: dict[str, str], doc_id: str, payload: Any, content_type: str, head: bool
    ) -> None:
        url = path.replace("{doc_id}", quote(doc_id, safe=""))
        url = url.replace("{job_id}", quote(doc_id, safe=""))
        with fuzzed.client(timeout=120) as client:
            if method == "get":
                verb = "head" if head else "get"
                response = client.request(verb.upper(), url, params=query)
                check_response(document, path, method, response, head=head)
                seen.append(response.status_code)
                if head:
                    assert response.content == b""
                return
            if isinstance(payload, list):
                files = [(field, (name, data)) for field, name, data in payload]
                response = client.request(
                    method.upper(), url, params=query, files=files or None, data=None
                )
                if not files:
                    response = client.request(
                        method.upper(),
                        url,
                        content=b"",
                        headers={"content-type": "multipart/form-data; boundary=b"},
                    )
            elif isinstance(payload, str):
                headers = {"content-type": content_type} if content_type else {}
                response = client.request(
                    method.upper(), url, params=query, content=payload, headers=headers
                )
            else:
                response = client.request(method.upper(), url, params=query)
            check_response(document, path, method, response)
            seen.append(response.status_code)

    run()
    if method == "put" and 200 not in seen:  # a known id and one good part: rare by chance
        with fuzzed.client() as client:
            url = path.replace("{doc_id}", quote(known[0], safe=""))
            response = client.put(url, files={"file": ("notes.txt", b"Tide tables, revised.")})
        check_response(document, path, method, response)
        seen.append(response.status_code)
    if (path, method) == ("/v1/batches", "post") and not any(200 <= s < 300 for s in seen):
        with fuzzed.client() as client:  # a valid list of questions: rare by chance too
            response = client.post(path, json={"questions": [{"question": "Tide tables?"}]})
        check_response(document, path, method, response)
        seen.append(response.status_code)
    assert any(200 <= s < 300 for s in seen), (
        f"no positive case among {sorted(set(seen))}"
    )  # not only refusals

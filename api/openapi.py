"""The parts of the OpenAPI document that Litestar cannot infer, added to what it generates.

Litestar describes every error as its own `{status_code, detail, extra}` and only the 400 of a
validated handler; kb answers `{"error": {"type", "message"}, "request_id"}` with the statuses
listed here. It sees no body on the streamed upload, no `text/event-stream` on the stream, and
none of the limits that come from settings (`k`, `max_documents`, the question's length) or
from msgspec (unknown fields are refused). `complete_schema` fixes all of that in place, once,
when the app is made; `tests/api/test_schema_fuzz.py` keeps it true.
"""

from __future__ import annotations

from typing import Any

from litestar.openapi.spec import (
    OpenAPI,
    OpenAPIMediaType,
    OpenAPIResponse,
    Operation,
    Parameter,
    Reference,
    RequestBody,
    Schema,
)
from litestar.openapi.spec.enums import OpenAPIFormat, OpenAPIType

from api.controllers.documents import MAX_PAGE
from kb.settings import Settings

ERROR_REF = "#/components/schemas/ErrorResponse"
ERROR_SCHEMA = Schema(
    type=OpenAPIType.OBJECT,
    required=["error", "request_id"],
    properties={
        "error": Schema(
            type=OpenAPIType.OBJECT,
            required=["type", "message"],
            properties={
                "type": Schema(type=OpenAPIType.STRING, description="stable code"),
                "message": Schema(type=OpenAPIType.STRING),
            },
        ),
        "request_id": Schema(type=OpenAPIType.STRING, description="also in `x-request-id`"),
    },
    description="Every error: a stable `type`, a message, the request id.",
)

WHY = {
    400: "Invalid request (`invalid_request`): a bad parameter or body, or a `Host` this "
    "server does not answer to",
    401: "No valid API key (`unauthorized`), when the server has `KB_API_KEYS`",
    403: "A write from another origin (`forbidden`)",
    404: "No such document (`not_found`)",
    408: "The request body did not arrive in time (`request_timeout`)",
    413: "The body is over the limit (`too_large`)",
    415: "The body's type is not one this route reads (`unsupported_type`)",
}
DEFAULT = (
    "Any other error in the same shape: 429 `rate_limited`, 500 `internal_error`, 502 "
    "`upstream_*`, 503 `unavailable`, 504 `upstream_timeout`"
)
BODY = (403, 408, 413, 415)
STATUSES: dict[tuple[str, str], tuple[int, ...]] = {
    ("/health", "get"): (400,),
    ("/ready", "get"): (400,),
    ("/v1/ask", "post"): (400, 401, *BODY),
    ("/v1/ask/stream", "post"): (400, 401, *BODY),
    ("/v1/search", "get"): (400, 401),
    ("/v1/documents", "get"): (400, 401),
    ("/v1/documents", "post"): (400, 401, *BODY),
    ("/v1/documents/{doc_id}", "get"): (400, 401, 404),
    ("/v1/documents/{doc_id}", "delete"): (400, 401, 403, 404),
    ("/v1/documents/{doc_id}", "put"): (400, 401, 404, *BODY),
    ("/v1/documents/{doc_id}/original", "get"): (400, 401, 404),
    ("/v1/batches", "post"): (400, 401, *BODY),
    ("/v1/batches/{job_id}", "get"): (400, 401, 404),
    ("/v1/batches/{job_id}/results", "get"): (400, 401, 404),
}
ORIGINAL_TYPES = (
    "application/pdf",
    "text/plain",
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
)
EVENTS = (
    "Server-Sent Events: `delta` `{text}`, `citation` (a citation), then `done` (the answer "
    "as `POST /v1/ask` gives it) or `error` (the error shape)."
)


def _error(status: int) -> OpenAPIResponse:
    return OpenAPIResponse(
        description=WHY[status],
        content={"application/json": OpenAPIMediaType(schema=Reference(ERROR_REF))},
    )


def _operations(openapi: OpenAPI) -> dict[tuple[str, str], Operation]:
    found = {}
    for path, item in (openapi.paths or {}).items():
        for method in ("get", "post", "delete", "put", "patch"):
            operation = getattr(item, method, None)
            if operation is not None:
                found[(path, method)] = operation
    return found


def _not_null(schema: Any) -> Any:
    """A query parameter's schema without its `null` branch (a query has no null)."""
    if not isinstance(schema, Schema):
        return schema
    if schema.one_of:
        rest = [s for s in schema.one_of if not (isinstance(s, Schema) and s.type == "null")]
        if len(rest) == 1:
            return _not_null(rest[0])
    if isinstance(schema.type, list | tuple):
        types = [t for t in schema.type if t != OpenAPIType.NULL]
        schema.type = types[0] if len(types) == 1 else types
    if schema.enum:
        schema.enum = [v for v in schema.enum if v is not None]
    return schema


def complete_schema(openapi: OpenAPI, settings: Settings) -> None:
    components = openapi.components
    schemas = components.schemas if components.schemas is not None else {}
    components.schemas = schemas
    schemas["ErrorResponse"] = ERROR_SCHEMA
    operations = _operations(openapi)
    for key, operation in operations.items():
        responses = operation.responses or {}
        responses.pop("400", None)  # Litestar's own error shape
        for status in STATUSES.get(key, (400,)):
            responses[str(status)] = _error(status)
        responses["default"] = OpenAPIResponse(
            description=DEFAULT,
            content={"application/json": OpenAPIMediaType(schema=Reference(ERROR_REF))},
        )
        operation.responses = responses
        for parameter in operation.parameters or []:
            if isinstance(parameter, Parameter) and parameter.param_in == "query":
                parameter.schema = _not_null(parameter.schema)
    _search(operations[("/v1/search", "get")], settings)
    _documents(operations[("/v1/documents", "get")])
    _upload(operations[("/v1/documents", "post")], settings)
    _upload(operations[("/v1/documents/{doc_id}", "put")], settings, one=True)
    _stream(operations[("/v1/ask/stream", "post")])
    _original(operations[("/v1/documents/{doc_id}/original", "get")])
    _ready(operations[("/ready", "get")])
    _results(operations[("/v1/batches/{job_id}/results", "get")])
    _ask_body(schemas, settings)


def _parameter(operation: Operation, name: str) -> Schema:
    for parameter in operation.parameters or []:
        if isinstance(parameter, Parameter) and parameter.name == name:
            assert isinstance(parameter.schema, Schema)
            return parameter.schema
    raise KeyError(name)


def _search(operation: Operation, settings: Settings) -> None:
    q = _parameter(operation, "q")
    q.min_length, q.max_length = 1, settings.max_question_chars
    k = _parameter(operation, "k")
    k.minimum, k.maximum = 1, settings.max_k
    k.description = f"documents to return (default {min(settings.search_k, settings.max_k)})"


def _documents(operation: Operation) -> None:
    limit = _parameter(operation, "limit")
    limit.minimum, limit.maximum = 1, MAX_PAGE


def _upload(operation: Operation, settings: Settings, *, one: bool = False) -> None:
    files = Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY)
    parts = "Exactly one file part" if one else "One or more file parts"
    operation.request_body = RequestBody(
        required=True,
        description=(
            f"{parts} (any field name; each part needs a `filename` or "
            f"`filename*`), at most {settings.max_upload_bytes:,} bytes in all"
        ),
        content={
            "multipart/form-data": OpenAPIMediaType(
                schema=Schema(
                    type=OpenAPIType.OBJECT,
                    properties={
                        "file": Schema(
                            type=OpenAPIType.ARRAY,
                            items=files,
                            min_items=1,
                            max_items=1 if one else None,
                        )
                    },
                    required=["file"],
                )
            )
        },
    )


def _stream(operation: Operation) -> None:
    assert operation.responses is not None
    operation.responses["200"] = OpenAPIResponse(
        description=EVENTS,
        content={
            "text/event-stream": OpenAPIMediaType(
                schema=Schema(type=OpenAPIType.STRING, description=EVENTS)
            )
        },
    )


def _original(operation: Operation) -> None:
    assert operation.responses is not None
    binary = Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY)
    operation.responses["200"] = OpenAPIResponse(
        description="The original file, inline, with the document's media type",
        content={media: OpenAPIMediaType(schema=binary) for media in ORIGINAL_TYPES},
    )


def _results(operation: Operation) -> None:
    assert operation.responses is not None
    lines = (
        "JSON lines, one per answered question: `line`, `id`, `question`, then `answer`, "
        "`citations`, `documents`, `usage` (at the batch price), `model`, or `error` "
        "{type, message}."
    )
    operation.responses["200"] = OpenAPIResponse(
        description=lines,
        content={
            "application/x-ndjson": OpenAPIMediaType(
                schema=Schema(type=OpenAPIType.STRING, description=lines)
            )
        },
    )


def _ready(operation: Operation) -> None:
    assert operation.responses is not None
    ok = operation.responses["200"]
    assert isinstance(ok, OpenAPIResponse)
    operation.responses["503"] = OpenAPIResponse(
        description="Not ready: Chroma cannot be reached (the body says what)",
        content=ok.content,
    )


def _ask_body(schemas: dict[str, Schema], settings: Settings) -> None:
    request, filters = schemas["AskRequest"], schemas["AskFilters"]
    request.additional_properties = False
    filters.additional_properties = False
    properties = request.properties or {}
    question = properties["question"]
    assert isinstance(question, Schema)
    question.max_length = settings.max_question_chars
    properties["max_documents"] = Schema(
        one_of=[
            Schema(type=OpenAPIType.INTEGER, minimum=1, maximum=settings.max_documents),
            Schema(type=OpenAPIType.NULL),
        ],
        description=f"documents to attach (default {settings.max_documents})",
    )

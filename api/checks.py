"""What Litestar's own parsing lets through, refused before a handler runs (`before_request`).

- Query parameters: each at most once (`?offset=1&offset=2` is 400, not the first or the last
  silently), and integers written plainly (`10`, not `+10`, ` 10`, `1_0` or `010`).
- JSON bodies: sent as `application/json` (a `text/plain` body, which a browser posts from any
  page without asking, is 415), not empty, and decoded strictly against the handler's type:
  `"3"` is not an integer, an unknown field is refused, and a document nested a thousand
  levels deep is a 400, never a 500.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
from litestar import Request
from litestar.params import BodyKwarg, ParameterKwarg
from litestar.typing import FieldDefinition

from kb.errors import InvalidInput, UnsupportedType

_INTEGER = re.compile(r"0|[1-9][0-9]{0,17}")
_JSON = re.compile(r"application/([a-z0-9.+-]*\+)?json", re.IGNORECASE)


def _is_int(field: FieldDefinition) -> bool:
    if field.is_optional:
        return any(_is_int(inner) for inner in field.inner_types if not inner.is_none_type)
    return field.annotation is int


def _query_ints(request: Request[Any, Any, Any]) -> set[str]:
    names = set()
    for name, field in request.route_handler.parsed_fn_signature.parameters.items():
        kwarg = field.kwarg_definition
        if isinstance(kwarg, ParameterKwarg) and (kwarg.header or kwarg.cookie):
            continue
        if _is_int(field):
            names.add(kwarg.query if isinstance(kwarg, ParameterKwarg) and kwarg.query else name)
    return names


def check_query(request: Request[Any, Any, Any]) -> None:
    seen: set[str] = set()
    integers = _query_ints(request)
    for name, value in request.query_params.multi_items():
        if name in seen:
            raise InvalidInput(f"{name}: given more than once")
        seen.add(name)
        if name in integers and not _INTEGER.fullmatch(value):
            raise InvalidInput(f"{name}: must be a whole number written in digits, got {value!r}")


def _body_type(request: Request[Any, Any, Any]) -> Any:
    field = request.route_handler.parsed_fn_signature.parameters.get("data")
    if field is None or not isinstance(field.kwarg_definition, BodyKwarg | type(None)):
        return None
    return field.annotation


async def check_json_body(request: Request[Any, Any, Any], body_type: Any) -> None:
    media = (request.headers.get("content-type") or "").split(";", 1)[0].strip()
    if not _JSON.fullmatch(media):
        raise UnsupportedType(
            f"expected a JSON body sent as application/json, got {media or 'no content type'!r}"
        )
    body = await request.body()
    if not body.strip():
        raise InvalidInput(
            'the request body is empty: send a JSON object, e.g. {"question": "..."}'
        )
    try:
        msgspec.json.decode(body, type=body_type)
    except msgspec.ValidationError as exc:
        raise InvalidInput(_field_first(str(exc))) from None
    except msgspec.DecodeError as exc:
        raise InvalidInput(f"the request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise InvalidInput("the request body is nested too deeply") from None


def _field_first(message: str) -> str:
    """msgspec's `Expected `int`, got `str` - at `$.max_documents`` as
    `max_documents: Expected `int`, got `str``."""
    match = re.fullmatch(r"(.*) - at `\$\.?(.*)`", message)
    if match is None:
        return message
    text, where = match.groups()
    return f"{where}: {text}" if where else text


async def check_request(request: Request[Any, Any, Any]) -> None:
    """`before_request` for every route: the query's and the JSON body's strict checks."""
    check_query(request)
    body_type = _body_type(request)
    if body_type is not None:
        await check_json_body(request, body_type)

"""`POST /v1/ask` and `POST /v1/ask/stream`: retrieve documents, then answer with citations."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence

import msgspec
from litestar import Controller, post
from litestar.params import JSONBody
from litestar.response import ServerSentEvent, ServerSentEventMessage

from api.deps import KB
from api.errors import current_request_id
from api.limits import check_max_documents
from api.schemas import (
    AskRequest,
    AskResponse,
    ErrorBody,
    ErrorResponse,
    from_answer,
    from_citation,
)
from kb.errors import KBError
from kb.retrieval import QUESTION_CHUNKS
from kb.service import check_question
from kb.types import AnswerDone, CitationDelta, DocumentHit, SearchFilters, TextDelta

log = logging.getLogger("kb.api")


def _ms(since: float) -> float:
    return (time.perf_counter() - since) * 1000


def _prepare(data: AskRequest, kb: KB) -> tuple[str, Sequence[DocumentHit], float]:
    question = check_question(data.question, kb.settings)
    n = check_max_documents(data.max_documents, kb.settings)
    started = time.perf_counter()
    filters = SearchFilters(data.filters.source_prefix, data.filters.kind) if data.filters else None
    hits = kb.search(question, k=n, filters=filters, chunks_per_doc=QUESTION_CHUNKS)
    return question, hits, _ms(started)


def _event(name: str, payload: object) -> ServerSentEventMessage:
    return ServerSentEventMessage(event=name, data=msgspec.json.encode(payload).decode())


class AskController(Controller):
    path = "/ask"
    tags = ("ask",)

    @post("/", status_code=200, sync_to_thread=True, summary="Answer a question with citations")
    def ask(self, data: JSONBody[AskRequest], kb: KB) -> AskResponse:
        question, hits, retrieve_ms = _prepare(data, kb)
        started = time.perf_counter()
        answer = kb.ask(question, hits)
        return from_answer(answer, retrieve_ms=retrieve_ms, model_ms=_ms(started))

    @post(
        "/stream",
        status_code=200,
        sync_to_thread=True,
        summary="Answer a question as Server-Sent Events",
        description=(
            "Events: `delta` ({text}), `citation` (a citation), then `done` (the full answer "
            "with usage and timings), or `error` (the error shape) if answering fails."
        ),
    )
    def ask_stream(self, data: JSONBody[AskRequest], kb: KB) -> ServerSentEvent:
        question, hits, retrieve_ms = _prepare(data, kb)
        request_id = current_request_id.get()
        return ServerSentEvent(_events(kb, question, hits, retrieve_ms, request_id))


def _events(
    kb: KB,
    question: str,
    hits: Sequence[DocumentHit],
    retrieve_ms: float,
    request_id: str,
) -> Iterator[ServerSentEventMessage]:
    started = time.perf_counter()
    try:
        for event in kb.stream(question, hits):
            if isinstance(event, TextDelta):
                yield _event("delta", {"text": event.text})
            elif isinstance(event, CitationDelta):
                yield _event("citation", from_citation(event.citation))
            elif isinstance(event, AnswerDone):
                done = from_answer(event.answer, retrieve_ms=retrieve_ms, model_ms=_ms(started))
                yield _event("done", done)
    except KBError as exc:
        log.warning("stream failed: %s: %s [%s]", exc.code, exc, request_id)
        yield _event("error", ErrorResponse(ErrorBody(exc.code, str(exc)), request_id))
    except Exception:
        log.exception("stream failed [%s]", request_id)
        body = ErrorResponse(ErrorBody("internal_error", "Internal server error."), request_id)
        yield _event("error", body)

"""`POST /v1/messages` of the stand-in: validation, a deterministic cited answer, usage with
prompt-cache accounting, and the SSE transcript (contract §5).

The answer is extractive: for each document block, the sentence sharing the most words with
the question is quoted with a real citation (`page_location` computed from the stored PDF
with pypdf, end exclusive; `char_location` into a text document).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from standin.store import Quirks, State, new_id

DOCUMENT_MIMES = {"application/pdf", "text/plain"}
IMAGE_MIMES = {"image/jpeg", "image/png", "image/gif", "image/webp"}
NO_ANSWER = "The documents do not contain the answer."
_STOP_WORDS = (
    "the a an and or of to in on for is are was were be by with what which who whom how "
    "when where why does did do that this these those from at as it its into than then there"
)
_STOP = frozenset(_STOP_WORDS.split())
_WORD = re.compile(r"[a-z0-9]+")
_SENTENCE = re.compile(r"[^.!?\n]+[.!?]?")


class ApiError(Exception):
    def __init__(
        self, status: int, error_type: str, message: str, error_code: str | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.error_type, self.message, self.error_code = (
            status,
            error_type,
            message,
            error_code,
        )


def _bad(message: str) -> ApiError:
    return ApiError(400, "invalid_request_error", message)


def _missing(state: State, file_id: str) -> ApiError:
    """An unknown or expired file_id: 404 per the docs, or 400 (the contract leaves it open)."""
    if state.quirks.missing_file_status == 400:
        return _bad(f"File `{file_id}` not found.")
    return ApiError(404, "not_found_error", f"File `{file_id}` not found.")


@dataclass
class Doc:
    index: int
    title: str | None
    file_id: str | None
    pdf: bool
    pages: list[str]
    citations: bool


@dataclass
class Prepared:
    docs: list[Doc] = field(default_factory=list)
    question: str = ""
    tokens: int = 0
    prefix_tokens: int = 0
    prefix_key: str | None = None


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)


def _pdf_pages(data: bytes) -> list[str]:
    from pypdf import PdfReader

    try:
        return [p.extract_text() or "" for p in PdfReader(io.BytesIO(data)).pages]
    except Exception as exc:
        raise _bad(f"The PDF specified could not be read: {exc}") from exc


def _document(state: State, block: dict[str, Any], where: str, index: int) -> Doc:
    source = block.get("source") or {}
    kind = source.get("type")
    file_id = None
    if kind == "file":
        file_id = source.get("file_id")
        stored = state.files.get(str(file_id))
        if stored is None or stored.expired:
            raise _missing(state, str(file_id))
        if stored.mime_type not in DOCUMENT_MIMES:
            raise _bad(
                f"{where}: Unsupported document file format: {stored.mime_type}. "
                "Only PDF and plaintext documents are supported."
            )
        pdf, pages = stored.mime_type == "application/pdf", stored.pages()
    elif kind == "base64":
        if source.get("media_type") != "application/pdf":
            raise _bad(f"{where}.source.media_type: must be application/pdf")
        pdf, pages = True, _pdf_pages(base64.b64decode(source.get("data", "")))
    elif kind == "text":
        pdf, pages = False, [str(source.get("data", ""))]
    else:
        raise _bad(f"{where}.source: Input tag '{kind}' does not match any of the expected tags")
    citations = bool((block.get("citations") or {}).get("enabled"))
    return Doc(index, block.get("title"), file_id, pdf, pages, citations)


def _image(state: State, block: dict[str, Any], where: str) -> int:
    source = block.get("source") or {}
    if source.get("type") == "file":
        stored = state.files.get(str(source.get("file_id")))
        if stored is None or stored.expired:
            raise _missing(state, str(source.get("file_id")))
        if stored.mime_type not in IMAGE_MIMES:
            raise _bad(f"{where}: Invalid file type {stored.mime_type} for an image block.")
        return min(1600, max(1, len(stored.data) // 750))
    if source.get("type") == "base64":
        return min(1600, max(1, len(source.get("data", "")) // 1000))
    raise _bad(f"{where}.source: unsupported image source")


def prepare(state: State, body: dict[str, Any]) -> Prepared:
    """Validate the request and resolve every block; raise ApiError as the API would."""
    if not isinstance(body.get("model"), str):
        raise _bad("model: Field required")
    if state.models is not None and body["model"] not in state.models:
        # as captured from the real API: 404 not_found_error, message `model: <name>`
        status = state.quirks.unknown_model_status
        kind = "not_found_error" if status == 404 else "invalid_request_error"
        raise ApiError(status, kind, f"model: {body['model']}")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _bad("messages: Field required")
    out = Prepared()
    system = body.get("system") or ""
    system_text = system if isinstance(system, str) else json.dumps(system)
    out.tokens = _tokens(system_text) if system_text else 0
    prefix: list[Any] = [body["model"], system]
    seen: list[Any] = []
    for m, message in enumerate(messages):
        content = message.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        for b, block in enumerate(blocks or []):
            where = f"messages.{m}.content.{b}"
            kind = block.get("type")
            if kind == "document":
                doc = _document(state, block, where, len(out.docs))
                out.docs.append(doc)
                cost = sum(_tokens(p) + 100 for p in doc.pages)
            elif kind == "image":
                cost = _image(state, block, where)
            elif kind == "text":
                cost = _tokens(str(block.get("text", "")))
                if message.get("role") == "user":
                    out.question = str(block.get("text", ""))
            else:
                raise _bad(f"{where}.type: unsupported block type {kind!r}")
            out.tokens += cost
            seen.append(block)
            if block.get("cache_control"):
                key = json.dumps(prefix + seen, sort_keys=True).encode()
                out.prefix_key = hashlib.sha256(key).hexdigest()
                out.prefix_tokens = out.tokens
    if len({d.citations for d in out.docs}) > 1:
        raise _bad("Citations must be enabled on all or none of the documents.")
    pages = sum(len(d.pages) for d in out.docs if d.pdf)
    if pages > state.max_pdf_pages:
        raise _bad(f"A maximum of {state.max_pdf_pages} PDF pages may be provided.")
    return out


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP and len(w) > 1}


def _best_sentence(doc: Doc, question: set[str]) -> tuple[int, int, int, str] | None:
    """(score, page index, char offset, sentence) of the best match in a document."""
    best: tuple[int, int, int, str] | None = None
    for p, text in enumerate(doc.pages):
        for match in _SENTENCE.finditer(text):
            sentence = match.group(0).strip()
            score = len(_words(sentence) & question)
            if sentence and score and (best is None or score > best[0]):
                start = match.start() + (len(match.group(0)) - len(match.group(0).lstrip()))
                best = (score, p, start, sentence)
    return best


def _citation(doc: Doc, page: int, start: int, sentence: str, quirks: Quirks) -> dict[str, Any]:
    common = {
        "cited_text": sentence,
        "document_index": doc.index,
        "document_title": doc.title if quirks.citation_title else None,
        "file_id": doc.file_id if quirks.citation_file_id else None,
    }
    if doc.pdf:
        return {
            "type": "page_location",
            **common,
            "start_page_number": page + 1,
            "end_page_number": page + 2,
        }
    return {
        "type": "char_location",
        **common,
        "start_char_index": start,
        "end_char_index": start + len(sentence),
    }


def answer_content(prepared: Prepared, quirks: Quirks) -> list[dict[str, Any]]:
    question = _words(prepared.question)
    found = [(b, d) for d in prepared.docs if (b := _best_sentence(d, question))]
    found.sort(key=lambda item: (-item[0][0], item[1].index))
    plain: dict[str, Any] = {"citations": None} if quirks.null_citations else {}
    if not found:
        return [{"type": "text", "text": NO_ANSWER, **plain}]
    content: list[dict[str, Any]] = [
        {"type": "text", "text": "According to the documents: ", **plain}
    ]
    if quirks.novel_events:  # block and citation types a newer API may add
        content.insert(0, {"type": "future_block", "data": {"x": 1}})
    for n, ((_, page, start, sentence), doc) in enumerate(found[:3]):
        if n:
            content.append({"type": "text", "text": " ", **plain})
        block: dict[str, Any] = {"type": "text", "text": sentence, **plain}
        if doc.citations:
            block["citations"] = [_citation(doc, page, start, sentence, quirks)]
            if quirks.novel_events:
                block["citations"] += [
                    {
                        "type": "content_block_location",
                        "cited_text": sentence,
                        "document_index": doc.index,
                        "document_title": None,
                        "start_block_index": 0,
                        "end_block_index": 1,
                        "file_id": None,
                    },
                    {"type": "future_location", "cited_text": sentence, "document_index": 0},
                ]
        content.append(block)
    return content


def _truncate(content: list[dict[str, Any]], max_tokens: int) -> list[dict[str, Any]]:
    """The content cut to `max_tokens` output tokens, as a model stopping mid-answer."""
    out, budget = [], max_tokens * 4
    for block in content:
        if block["type"] != "text" or budget <= 0:
            continue
        out.append(dict(block, text=block["text"][:budget]))
        budget -= len(block["text"])
    return out


def usage(state: State, prepared: Prepared, content: list[dict[str, Any]]) -> dict[str, Any]:
    write = read = 0
    if prepared.prefix_key:
        with state.lock:
            if prepared.prefix_key in state.cache:
                read = prepared.prefix_tokens
            else:
                write = prepared.prefix_tokens
                state.cache.add(prepared.prefix_key)
    output = sum(_tokens(b["text"]) for b in content if b["type"] == "text")
    if not state.quirks.cache_usage:
        return {"input_tokens": prepared.tokens, "output_tokens": output}
    return {
        "input_tokens": prepared.tokens - read - write,
        "output_tokens": output,
        "cache_creation_input_tokens": write,
        "cache_read_input_tokens": read,
        "cache_creation": {"ephemeral_5m_input_tokens": write, "ephemeral_1h_input_tokens": 0},
        "service_tier": "standard",
    }


def message(state: State, body: dict[str, Any]) -> dict[str, Any]:
    prepared = prepare(state, body)
    content = answer_content(prepared, state.quirks)
    stop_reason = state.quirks.stop_reason or "end_turn"
    if stop_reason == "refusal":
        content = []
    if sum(_tokens(b["text"]) for b in content if b["type"] == "text") > body["max_tokens"]:
        content, stop_reason = _truncate(content, body["max_tokens"]), "max_tokens"
    return {
        "id": new_id("msg_"),
        "type": "message",
        "role": "assistant",
        "model": body["model"],
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": usage(state, prepared, content),
    }


def _event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


def sse(msg: dict[str, Any], quirks: Quirks) -> Iterator[bytes]:
    """The §5.3 transcript for a finished message, shaped by `quirks` (errors, cuts, novelties)."""
    for n, event in enumerate(_events(msg, quirks.novel_events)):
        if n == quirks.stream_error_after:
            error = {"type": "overloaded_error", "message": "Overloaded"}
            yield _event("error", {"type": "error", "error": error})
            return
        if n == quirks.stream_cut_after:
            return
        yield event


def _events(msg: dict[str, Any], novel: bool) -> Iterator[bytes]:
    start = dict(msg, content=[], stop_reason=None)
    start["usage"] = dict(msg["usage"], output_tokens=1)
    yield _event("message_start", {"type": "message_start", "message": start})
    yield _event("ping", {"type": "ping"})
    if novel:
        yield _event("future_event", {"type": "future_event", "detail": {"x": 1}})
    for i, block in enumerate(msg["content"]):
        if block["type"] != "text":
            yield _event(
                "content_block_start",
                {"type": "content_block_start", "index": i, "content_block": block},
            )
            delta = {"type": "future_delta", "data": "x"}
            yield _event(
                "content_block_delta", {"type": "content_block_delta", "index": i, "delta": delta}
            )
            yield _event("content_block_stop", {"type": "content_block_stop", "index": i})
            continue
        opening: dict[str, Any] = {"type": "text", "text": ""}
        if "citations" in block:
            opening["citations"] = [] if block["citations"] is not None else None
        yield _event(
            "content_block_start",
            {"type": "content_block_start", "index": i, "content_block": opening},
        )
        for citation in block.get("citations") or []:
            delta = {"type": "citations_delta", "citation": citation}
            yield _event(
                "content_block_delta", {"type": "content_block_delta", "index": i, "delta": delta}
            )
            if novel:
                yield _event("ping", {"type": "ping"})
        text = block["text"]
        for piece in (text[: len(text) // 2], text[len(text) // 2 :]):
            if piece:
                delta = {"type": "text_delta", "text": piece}
                yield _event(
                    "content_block_delta",
                    {"type": "content_block_delta", "index": i, "delta": delta},
                )
        yield _event("content_block_stop", {"type": "content_block_stop", "index": i})
    delta_usage: dict[str, Any] = {"output_tokens": msg["usage"]["output_tokens"]}
    yield _event(
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": msg["stop_reason"], "stop_sequence": None},
            "usage": delta_usage,
        },
    )
    yield _event("message_stop", {"type": "message_stop"})

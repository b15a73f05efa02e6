"""The Claude answerer: one Messages request per question, documents attached by `file_id`.

The request holds the selected document parts as `document` blocks (images as `image`
blocks) in a canonical order (doc id, then part) so the same set always gives the same cacheable
prefix, `cache_control` on the last attachment, then the question. Citations come back
relative to the part that was sent (`page_location`: 1-based, end exclusive) and are mapped to
the original file's inclusive page numbers. A `file_id` that answers 404 (deleted or expired
remotely) is re-uploaded from the local copy once and the request retried once.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from kb.anthropic_files import to_kb_error
from kb.errors import KBError, NotFound
from kb.pricing import estimate_cost
from kb.types import (
    Answer,
    AnswerDone,
    AnswerEvent,
    Citation,
    CitationDelta,
    Document,
    DocumentHit,
    Part,
    SentDocument,
    TextDelta,
    Usage,
)

if TYPE_CHECKING:
    import anthropic

    from kb.service import KnowledgeBase
    from kb.settings import Settings

SYSTEM_PROMPT = (
    "You answer questions using only the attached documents. Cite the passages you rely on. "
    'If the documents do not contain the answer, say "The documents do not contain the '
    'answer." and do not guess or use outside knowledge.'
)
PDF_PAGE_TOKENS = 2000  # conservative per page: extracted text plus the page image
TEXT_BYTES_PER_TOKEN = 3
IMAGE_TOKENS = 1600
OVERHEAD_TOKENS = 500  # system prompt, block framing


@dataclass(frozen=True, slots=True)
class Pick:
    document: Document
    part: Part
    score: float


def estimate_tokens(doc: Document, part: Part) -> int:
    if doc.kind == "pdf":
        return (part.page_end - part.page_start + 1) * PDF_PAGE_TOKENS
    if doc.kind == "image":
        return IMAGE_TOKENS
    return doc.size_bytes // TEXT_BYTES_PER_TOKEN + 1


def _parts(doc: Document) -> tuple[Part, ...]:
    return doc.parts or (Part(0, 1, max(doc.page_count, 1)),)


def select(question: str, hits: Sequence[DocumentHit], settings: Settings) -> list[Pick]:
    """Best-scoring documents (only the parts holding hit chunks) within the request budget:
    at most `max_documents` documents, `max_request_pages` PDF pages, `max_request_tokens`."""
    pages, docs = 0, 0
    tokens = OVERHEAD_TOKENS + len(question) // 2
    picks: list[Pick] = []
    for hit in sorted(hits, key=lambda h: -h.score):
        if docs >= settings.max_documents:
            break
        doc, parts = hit.document, _parts(hit.document)
        by_index = {p.index: p for p in parts}
        wanted: list[Part] = []
        for chunk_hit in sorted(hit.chunks, key=lambda c: -c.score):
            part = by_index.get(chunk_hit.chunk.part)
            if part is not None and part not in wanted:
                wanted.append(part)
        chosen = False
        for part in wanted or [parts[0]]:
            n_pages = part.page_end - part.page_start + 1 if doc.kind == "pdf" else 0
            cost = estimate_tokens(doc, part)
            if pages + n_pages > settings.max_request_pages:
                continue
            if tokens + cost > settings.max_request_tokens:
                continue
            pages, tokens, chosen = pages + n_pages, tokens + cost, True
            picks.append(Pick(doc, part, hit.score))
        docs += chosen
    return sorted(picks, key=lambda p: (p.document.id, p.part.index))


def _file_id(pick: Pick) -> str | None:
    return next((f.file_id for f in pick.document.files if f.part == pick.part.index), None)


@dataclass
class Plan:
    question: str
    picks: list[Pick]
    documents: list[Pick]  # the picks sent as `document` blocks, by document_index

    def request(self, settings: Settings) -> dict[str, Any]:
        blocks: list[dict[str, Any]] = []
        for pick in self.picks:
            source = {"type": "file", "file_id": _file_id(pick)}
            if pick.document.kind == "image":
                blocks.append({"type": "image", "source": source})
                continue
            doc, part = pick.document, pick.part
            context = f"Source: {doc.source}"
            if doc.kind == "pdf":
                context += f"; pages {part.page_start}-{part.page_end} of {doc.page_count}"
            blocks.append(
                {
                    "type": "document",
                    "source": source,
                    "title": doc.title[:250] or None,
                    "context": context,
                    "citations": {"enabled": True},
                }
            )
        documents = [b for b in blocks if b["type"] == "document"] or blocks
        if documents:  # the cacheable prefix ends at the last document block
            documents[-1]["cache_control"] = {"type": "ephemeral"}
        blocks.append({"type": "text", "text": self.question})
        return {
            "model": settings.claude_model,
            "max_tokens": settings.max_output_tokens,
            "system": SYSTEM_PROMPT,
            "messages": [{"role": "user", "content": blocks}],
        }


def map_citation(plan: Plan, cited: Any) -> Citation | None:
    """An API citation -> kb Citation in the original document's numbering."""
    index = getattr(cited, "document_index", None)
    if not isinstance(index, int) or not 0 <= index < len(plan.documents):
        return None
    doc, part = plan.documents[index].document, plan.documents[index].part
    base = Citation(
        doc.id, doc.title, doc.source, cited.cited_text, file_id=_file_id(plan.documents[index])
    )
    if cited.type == "page_location":
        start = part.page_start + cited.start_page_number - 1
        last = max(cited.end_page_number - 1, cited.start_page_number)  # end is exclusive
        end = min(part.page_start + last - 1, part.page_end)
        return replace(base, page_start=min(start, end), page_end=end)
    if cited.type == "char_location":
        return replace(base, char_start=cited.start_char_index, char_end=cited.end_char_index)
    return base


def _missing_file(exc: Any, plan: Plan) -> bool:
    """A 404, or a 400 that names one of the sent file_ids as not found or expired."""
    import anthropic

    if isinstance(exc, anthropic.NotFoundError):
        return True
    text = f"{getattr(exc, 'body', '')} {exc}"
    sent = {fid for p in plan.picks if (fid := _file_id(p))}
    return any(fid in text for fid in sent) and bool(re.search(r"not found|expired", text, re.I))


class ClaudeAnswerer:
    name = "claude"

    def __init__(self, client: anthropic.Anthropic, settings: Settings, kb: KnowledgeBase) -> None:
        self._client = client
        self._settings = settings
        self._kb = kb

    def answer(self, question: str, hits: Sequence[DocumentHit]) -> Answer:
        for event in self._run(question, hits, streaming=False):
            if isinstance(event, AnswerDone):
                return event.answer
        raise KBError("no answer was produced")  # unreachable: _run always ends with AnswerDone

    def stream(self, question: str, hits: Sequence[DocumentHit]) -> Iterator[AnswerEvent]:
        return self._run(question, hits, streaming=True)

    # ------------------------------------------------------------------------------------

    def _run(
        self, question: str, hits: Sequence[DocumentHit], *, streaming: bool
    ) -> Iterator[AnswerEvent]:
        import anthropic

        picks = [self._ensure_uploaded(p) for p in select(question, hits, self._settings)]
        if not picks:
            yield AnswerDone(self._nothing_to_send())
            return
        plan = Plan(question, picks, [p for p in picks if p.document.kind != "image"])
        for attempt in (0, 1):
            try:
                if not streaming:
                    message = self._client.messages.create(**plan.request(self._settings))
                    yield AnswerDone(self._build(plan, message, message._request_id))
                    return
                with self._client.messages.stream(**plan.request(self._settings)) as stream:
                    for event in stream:
                        if event.type == "text":
                            yield TextDelta(event.text)
                        elif event.type == "citation":
                            citation = map_citation(plan, event.citation)
                            if citation is not None:
                                yield CitationDelta(citation)
                    final = stream.get_final_message()
                    yield AnswerDone(self._build(plan, final, stream.request_id))
                    return
            except (anthropic.NotFoundError, anthropic.BadRequestError) as exc:
                if not _missing_file(exc, plan):
                    raise to_kb_error(exc, "Asking Claude") from exc
                if attempt:
                    raise NotFound(
                        "A document's file is missing at Anthropic even after re-uploading it",
                        hint=str(to_kb_error(exc)),
                    ) from exc
                plan = self._recover(plan, exc)
            except KBError:
                raise
            except Exception as exc:
                raise to_kb_error(exc, "Asking Claude") from exc

    def _ensure_uploaded(self, pick: Pick) -> Pick:
        doc = pick.document
        if doc.file_store == self._kb.files.name and _file_id(pick):
            return pick
        return replace(pick, document=self._reupload(doc))

    def _reupload(self, doc: Document) -> Document:
        from kb.uploads import upload_document

        new_doc = upload_document(self._kb.files, self._kb.blobs, doc)
        self._kb.index.commit(new_doc)
        return new_doc

    def _recover(self, plan: Plan, exc: Exception) -> Plan:
        """Re-upload the documents whose file_ids are gone; return the plan with new ids."""
        named = set(re.findall(r"file_[A-Za-z0-9_-]+", str(getattr(exc, "body", "")) + str(exc)))
        sent = {fid for p in plan.picks if (fid := _file_id(p))}
        gone = (named & sent) | {f for f in sent - named if not self._kb.files.exists(f)}
        renewed: dict[str, Document] = {}
        for pick in plan.picks:
            doc = pick.document
            if _file_id(pick) in gone and doc.id not in renewed:
                renewed[doc.id] = self._reupload(doc)
        picks = [replace(p, document=renewed.get(p.document.id, p.document)) for p in plan.picks]
        return Plan(plan.question, picks, [p for p in picks if p.document.kind != "image"])

    def _build(self, plan: Plan, message: Any, request_id: str | None) -> Answer:
        text, citations = [], []
        for block in message.content:
            if block.type != "text":
                continue
            text.append(block.text)
            for cited in block.citations or ():
                citation = map_citation(plan, cited)
                if citation is not None and citation not in citations:
                    citations.append(citation)
        u = message.usage
        usage = Usage(
            u.input_tokens,
            u.output_tokens,
            u.cache_creation_input_tokens or 0,
            u.cache_read_input_tokens or 0,
        )
        cost = estimate_cost(message.model, usage, self._settings.price_table)
        return Answer(
            text="".join(text).strip(),
            citations=tuple(citations),
            documents=tuple(
                SentDocument(
                    p.document.id,
                    p.document.title,
                    p.score,
                    _file_id(p),
                    p.part.index,
                    p.part.page_start,
                    p.part.page_end,
                )
                for p in plan.picks
            ),
            answered_by="claude",
            usage=replace(usage, cost_usd=cost),
            model=message.model,
            request_id=request_id,
        )

    def _nothing_to_send(self) -> Answer:
        return Answer(
            text="No documents in the knowledge base match this question.",
            citations=(),
            documents=(),
            answered_by="claude",
            notice="No documents were selected, so Claude was not called.",
        )

"""The Claude answerer: one Messages request per question, documents attached by `file_id`.

The request is planned in `kb.anthropic.request` (selection, blocks, citation mapping). Here:
sending it (plain or streamed), turning the reply into an `Answer`, and recovery. A `file_id`
the API reports missing (404, or a 400 naming a file as not found/expired: the contract leaves
the status open) has its document re-uploaded from the local copy, once, and the request is
retried; only an error that names no sent file makes kb look the sent files up.

Only what the contract promises is relied on: `citations` may be null or absent, usage fields
other than input/output tokens may be missing, unknown block/citation/event types are skipped,
and a stop reason other than `end_turn`/`stop_sequence` is surfaced as the answer's notice. A
stream that fails after its 200 (an `error` event) or ends before its final `message_delta`
becomes a kb error, never a silently partial answer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from kb.anthropic.errors import to_kb_error
from kb.anthropic.request import (
    Pick,
    Plan,
    file_id_of,
    map_citation,
    request_tokens,
    select,
)
from kb.errors import KBError, NotFound, UpstreamError, UpstreamNotFound
from kb.pricing import estimate_cost
from kb.types import (
    Answer,
    AnswerDone,
    AnswerEvent,
    Citation,
    CitationDelta,
    Document,
    DocumentHit,
    SentDocument,
    TextDelta,
    Usage,
)

if TYPE_CHECKING:
    import anthropic

    from kb.settings import Settings

Renew = Callable[[Document], Document]  # a document in, the same document as now stored out

COMPLETE = frozenset({"end_turn", "stop_sequence"})
REFUSED = "Claude declined to answer this question."
STOP_NOTICES = {
    "max_tokens": "The answer was cut off at the output limit (KB_MAX_OUTPUT_TOKENS={limit}).",
    "refusal": REFUSED,
    "model_context_window_exceeded": "The answer was cut off: the request filled the model's "
    "context window. Fewer documents (KB_MAX_DOCUMENTS, KB_MAX_REQUEST_PAGES) leave more room.",
    "pause_turn": "Claude paused before finishing the answer; ask again to continue.",
}
_MISSING = re.compile(r"not[ _]found|expired|does not exist|no such|deleted|unknown file", re.I)
_FILE_ID = re.compile(r"file_[A-Za-z0-9_-]+")


def stop_notice(stop_reason: str | None, settings: Settings) -> str:
    """What the user should know about how the answer ended ("" for a complete answer)."""
    if stop_reason is None or stop_reason in COMPLETE:
        return ""
    notice = STOP_NOTICES.get(stop_reason, f"Claude stopped early (stop reason {stop_reason!r}).")
    return notice.format(limit=settings.max_output_tokens)


def _error_text(exc: Any) -> str:
    return f"{getattr(exc, 'body', '')} {exc}"


def about_missing_file(kind: str, code: str | None, message: str) -> bool:
    """An error, as a batch result reports it (type, error_code, message), that may be about a
    sent file being gone: a 404, or a message saying a file is not found or expired."""
    return (
        kind == "not_found_error"
        or code in ("file_expired", "file_not_found")
        or ("file" in message.lower() and bool(_MISSING.search(message)))
    )


def named_files(text: str) -> set[str]:
    """The file ids an error message names."""
    return set(_FILE_ID.findall(text))


def _maybe_missing_file(exc: Exception) -> bool:
    """A 404, or a 400 that says a file is not found/expired: worth checking the sent ids."""
    import anthropic

    if isinstance(exc, anthropic.NotFoundError):
        return True
    if not isinstance(exc, anthropic.BadRequestError):
        return False
    text = _error_text(exc)
    code = getattr(exc, "error_code", None)
    return code in ("file_expired", "file_not_found") or (
        "file" in text.lower() and bool(_MISSING.search(text))
    )


@dataclass
class _Recovery:
    """What one question's recovery from missing files has done so far."""

    renewed: set[str] = field(default_factory=set)  # documents uploaded again
    checked: bool = False  # every sent file was looked up once


class ClaudeAnswerer:
    """Answers with Claude. Given, not the knowledge base, but what it needs of it: moving a
    document to the current page windows, making sure its files are uploaded, uploading them
    again (each commits the record and returns it), and asking whether a file exists."""

    name = "claude"

    def __init__(
        self,
        client: anthropic.Anthropic,
        settings: Settings,
        *,
        in_windows: Renew,
        ensure_uploaded: Renew,
        reupload: Renew,
        file_exists: Callable[[str], bool],
    ) -> None:
        self._client = client
        self._settings = settings
        self._in_windows = in_windows
        self._ensure_uploaded = ensure_uploaded
        self._reupload = reupload
        self._file_exists = file_exists

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
        plan = self.plan(question, hits)
        if plan is None:
            yield AnswerDone(self.nothing_to_send())
            return
        recovery = _Recovery()
        while True:
            try:
                if streaming:
                    yield from self._stream_once(plan)
                else:
                    message = self._client.messages.create(**plan.request(self._settings))
                    yield AnswerDone(self.build(plan, message, message._request_id))
                return
            except KBError:
                raise
            except Exception as exc:
                if not _maybe_missing_file(exc):
                    raise to_kb_error(exc, "Asking Claude") from exc
                plan = self._recover(plan, exc, recovery)

    def plan(self, question: str, hits: Sequence[DocumentHit]) -> Plan | None:
        """What the question sends: its page windows, each uploaded; None when nothing is."""
        hits = [windowed for hit in hits if (windowed := self._windowed(hit)) is not None]
        picks = [self._uploaded(p) for p in select(question, hits, self._settings)]
        return Plan.of(question, picks) if picks else None

    def _stream_once(self, plan: Plan) -> Iterator[AnswerEvent]:
        with self._client.messages.stream(**plan.request(self._settings)) as stream:
            for event in stream:
                if event.type == "text" and event.text:
                    yield TextDelta(event.text)
                elif event.type == "citation":
                    citation = map_citation(plan, event.citation)
                    if citation is not None:
                        yield CitationDelta(citation)
            final = stream.get_final_message()
            if final.stop_reason is None:  # no message_delta: the body ended early
                raise UpstreamError(
                    "Asking Claude failed: the answer stream ended before it was complete "
                    f"(request {stream.request_id}); the partial answer was discarded"
                )
            yield AnswerDone(self.build(plan, final, stream.request_id))

    def _windowed(self, hit: DocumentHit) -> DocumentHit | None:
        """The hit with its document in the current page windows (a PDF stored in longer
        parts moves now, once); None when the document was removed meanwhile."""
        try:
            document = self._in_windows(hit.document)
        except NotFound:
            return None
        return hit if document is hit.document else replace(hit, document=document)

    def _uploaded(self, pick: Pick) -> Pick:
        document = self._ensure_uploaded(pick.document)
        return pick if document is pick.document else replace(pick, document=document)

    def _recover(self, plan: Plan, exc: Exception, recovery: _Recovery) -> Plan:
        """Re-upload the documents whose file_ids are gone; return the plan with new ids.

        The files the error names are gone, and no other file is looked up; only an error that
        names none of the sent files makes kb check each of them (once per question). Each
        document is re-uploaded at most once, so this ends: a file still missing after its
        document was re-uploaded is an `UpstreamNotFound`, and an error that names no sent
        file while every sent file still exists is not about files (e.g. an unknown model):
        it is raised as is."""
        sent = plan.file_ids()
        gone = set(_FILE_ID.findall(_error_text(exc))) & sent
        if not gone and not recovery.checked:
            recovery.checked = True
            gone = {
                f
                for p in plan.picks
                if p.document.id not in recovery.renewed
                for f in [file_id_of(p)]
                if f and not self._file_exists(f)
            }
        docs = {p.document.id for p in plan.picks if file_id_of(p) in gone}
        if not docs or docs & recovery.renewed:
            if recovery.renewed:
                raise UpstreamNotFound(
                    "A document's file is missing at Anthropic even after re-uploading it",
                    hint=str(to_kb_error(exc)),
                ) from exc
            raise to_kb_error(exc, "Asking Claude") from exc
        recovery.renewed |= docs
        return self.renew(plan, docs)

    def renew(
        self, plan: Plan, doc_ids: set[str], renewed: dict[str, Document] | None = None
    ) -> Plan:
        """`plan` with the documents `doc_ids` uploaded again and their new ids. `renewed`
        (document id -> record) remembers the uploads across plans: each document once."""
        renewed = {} if renewed is None else renewed
        for pick in plan.picks:
            doc = pick.document
            if doc.id in doc_ids and doc.id not in renewed:
                renewed[doc.id] = self._reupload(doc)
        picks = [replace(p, document=renewed.get(p.document.id, p.document)) for p in plan.picks]
        return Plan.of(plan.question, picks)

    def build(self, plan: Plan, message: Any, request_id: str | None) -> Answer:
        """The answer a Claude message gives to `plan`, citations in the originals' pages."""
        text: list[str] = []
        citations: list[Citation] = []
        for block in getattr(message, "content", None) or ():
            if getattr(block, "type", None) != "text" or not isinstance(block.text, str):
                continue  # thinking, tool use, or a block type this client does not know
            text.append(block.text)
            for cited in getattr(block, "citations", None) or ():
                citation = map_citation(plan, cited)
                if citation is not None and citation not in citations:
                    citations.append(citation)
        model = getattr(message, "model", None) or self._settings.claude_model
        stop_reason = getattr(message, "stop_reason", None)
        notice = stop_notice(stop_reason, self._settings)
        answer_text = "".join(text).strip()
        if not answer_text and stop_reason == "refusal":
            answer_text = REFUSED
        usage = _usage(getattr(message, "usage", None))
        cost = estimate_cost(model, usage, self._settings.price_table)
        estimated = request_tokens(plan.question, plan.picks)
        return Answer(
            text=answer_text,
            citations=tuple(citations),
            documents=tuple(
                SentDocument(
                    p.document.id,
                    p.document.title,
                    p.score,
                    file_id_of(p),
                    p.part.index,
                    p.part.page_start,
                    p.part.page_end,
                    p.pages,
                    p.tokens,
                )
                for p in plan.picks
            ),
            answered_by="claude",
            usage=replace(usage, cost_usd=cost),
            model=model,
            request_id=request_id,
            notice=notice,
            estimated_input_tokens=estimated,
            estimated_cost_usd=estimate_cost(
                model, Usage(input_tokens=estimated), self._settings.price_table
            ),
        )

    def nothing_to_send(self) -> Answer:
        return Answer(
            text="No documents in the knowledge base match this question.",
            citations=(),
            documents=(),
            answered_by="claude",
            notice="No documents were selected, so Claude was not called.",
        )


def _usage(u: Any) -> Usage:
    """Token counts; only input/output are required by the contract, and even they are read
    defensively (a missing count is 0, not a crash)."""

    def count(name: str) -> int:
        value = getattr(u, name, None)
        return value if isinstance(value, int) else 0

    return Usage(
        count("input_tokens"),
        count("output_tokens"),
        count("cache_creation_input_tokens"),
        count("cache_read_input_tokens"),
    )

"""What one question sends to Claude, and how its citations come back.

`select` picks the page windows (and short documents) that hold the best chunks, within the
request budget, `Plan.request` builds the
Messages request (only `file_id` sources: `document` blocks for PDFs and text, `image` blocks
for images, in a canonical order so the same set gives the same cacheable prefix), and
`map_citation` turns a citation relative to the part that was sent into the original
document's numbering.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from kb.types import Chunk, Citation, Document, DocumentHit, Part

if TYPE_CHECKING:
    from kb.settings import Settings

SYSTEM_PROMPT = (
    "You answer questions using only the attached documents. Cite the passages you rely on. "
    'If the documents do not contain the answer, say "The documents do not contain the '
    'answer." and do not guess or use outside knowledge.'
)
PDF_PAGE_TOKENS = 2000  # conservative per page: extracted text plus the page image (1.5k-3k)
TEXT_BYTES_PER_TOKEN = 3
IMAGE_TOKENS = 1600
OVERHEAD_TOKENS = 500  # system prompt, block framing


@dataclass(frozen=True, slots=True)
class Pick:
    document: Document
    part: Part
    score: float

    @property
    def pages(self) -> int:
        """PDF pages this pick sends (text and images count no pages)."""
        if self.document.kind != "pdf":
            return 0
        return self.part.page_end - self.part.page_start + 1

    @property
    def tokens(self) -> int:
        return estimate_tokens(self.document, self.part)


def estimate_tokens(doc: Document, part: Part) -> int:
    if doc.kind == "pdf":
        return (part.page_end - part.page_start + 1) * PDF_PAGE_TOKENS
    if doc.kind == "image":
        return IMAGE_TOKENS
    return doc.size_bytes // TEXT_BYTES_PER_TOKEN + 1


def request_tokens(question: str, picks: Sequence[Pick]) -> int:
    """The estimated input tokens of a request: framing, the question and every pick."""
    return OVERHEAD_TOKENS + len(question) // 2 + sum(p.tokens for p in picks)


def _parts(doc: Document) -> tuple[Part, ...]:
    return doc.parts or (Part(0, 1, max(doc.page_count, 1)),)


def _holding(doc: Document, chunk: Chunk) -> list[Part]:
    """The parts that hold a chunk: for a PDF every window its pages touch (a chunk across a
    window boundary needs both), else the document's one part. Pages, not the chunk's `part`
    field, decide, so chunks written before page windows map onto windows unchanged."""
    parts = _parts(doc)
    if doc.kind != "pdf":
        return [parts[0]]
    touched = [
        p for p in parts if p.page_start <= chunk.page_end and chunk.page_start <= p.page_end
    ]
    return touched or [parts[0]]


def select(question: str, hits: Sequence[DocumentHit], settings: Settings) -> list[Pick]:
    """The page windows (or whole documents) to attach, best chunk first, within the budget.

    Every hit chunk proposes the windows that hold it; proposals are taken by chunk score,
    across documents, while they fit: at most `max_documents` documents,
    `max_request_pages` PDF pages and `max_request_tokens` estimated tokens. The best chunk's
    window is always sent when retrieval found anything (`Settings` guarantees one window fits;
    a chunk across a window boundary that does not fit whole sends the window it starts in).
    """
    proposals: list[tuple[float, int, Document, list[Part]]] = []
    for rank, hit in enumerate(sorted(hits, key=lambda h: -h.score)):
        doc = hit.document
        if not hit.chunks:
            proposals.append((hit.score, rank, doc, [_parts(doc)[0]]))
        for chunk_hit in hit.chunks:
            proposals.append((chunk_hit.score, rank, doc, _holding(doc, chunk_hit.chunk)))
    proposals.sort(key=lambda p: (-p[0], p[1]))  # stable: a document's chunks keep their order
    chosen: dict[tuple[str, int], Pick] = {}
    documents: set[str] = set()
    pages, tokens = 0, request_tokens(question, [])
    for score, _, doc, parts in proposals:
        holding = [p for p in parts if (doc.id, p.index) not in chosen]
        if not holding or (doc.id not in documents and len(documents) >= settings.max_documents):
            continue
        for group in (holding, holding[:1]) if not chosen else (holding,):
            new = [Pick(doc, part, score) for part in group]
            more_pages, more_tokens = sum(p.pages for p in new), sum(p.tokens for p in new)
            if (
                pages + more_pages <= settings.max_request_pages
                and tokens + more_tokens <= settings.max_request_tokens
            ):
                chosen.update({(doc.id, p.part.index): p for p in new})
                documents.add(doc.id)
                pages, tokens = pages + more_pages, tokens + more_tokens
                break
    return sorted(chosen.values(), key=lambda p: (p.document.id, p.part.index))


def file_id_of(pick: Pick) -> str | None:
    return next((f.file_id for f in pick.document.files if f.part == pick.part.index), None)


def block_context(pick: Pick, settings: Settings) -> str:
    """What a document block says about itself besides its title: a PDF window's pages, and
    its source (a local path, an upload's name) only when `KB_SEND_SOURCE_PATHS` opts in:
    local paths are private and never go upstream by default."""
    doc, part = pick.document, pick.part
    context: list[str] = []
    if settings.send_source_paths:
        context.append(f"Source: {doc.source}")
    if doc.kind == "pdf":
        context.append(f"pages {part.page_start}-{part.page_end} of {doc.page_count}")
    return "; ".join(context)


@dataclass
class Plan:
    question: str
    picks: list[Pick]
    documents: list[Pick]  # the picks sent as `document` blocks, by document_index

    @classmethod
    def of(cls, question: str, picks: list[Pick]) -> Plan:
        return cls(question, picks, [p for p in picks if p.document.kind != "image"])

    def file_ids(self) -> set[str]:
        return {fid for p in self.picks if (fid := file_id_of(p))}

    def request(self, settings: Settings) -> dict[str, Any]:
        blocks: list[dict[str, Any]] = []
        for pick in self.picks:
            source = {"type": "file", "file_id": file_id_of(pick)}
            if pick.document.kind == "image":
                blocks.append({"type": "image", "source": source})
                continue
            block: dict[str, Any] = {
                "type": "document",
                "source": source,
                "title": pick.document.title[:250] or None,
                "citations": {"enabled": True},
            }
            if context := block_context(pick, settings):
                block["context"] = context
            blocks.append(block)
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


def _pick_for(plan: Plan, cited: Any) -> Pick | None:
    """The sent document a citation points at: by `file_id` when the server names one we sent
    (unambiguous), else by `document_index` (0-based over the request's document blocks)."""
    file_id = getattr(cited, "file_id", None)
    if isinstance(file_id, str) and file_id:
        for pick in plan.documents:
            if file_id_of(pick) == file_id:
                return pick
    index = getattr(cited, "document_index", None)
    if isinstance(index, int) and 0 <= index < len(plan.documents):
        return plan.documents[index]
    return None


def map_citation(plan: Plan, cited: Any) -> Citation | None:
    """An API citation -> kb Citation in the original document's numbering.

    `page_location` pages (1-based, end exclusive, relative to the part sent) become the
    original's inclusive pages; `char_location` stays a character range. Any other type
    (`content_block_location`, or one a newer API adds) keeps the document and quoted text; on a
    PDF it is placed on the part's page range. Fields may be null or absent: nothing here
    assumes more than the contract promises."""
    pick = _pick_for(plan, cited)
    if pick is None:
        return None
    doc, part = pick.document, pick.part
    text = getattr(cited, "cited_text", None)
    base = Citation(doc.id, doc.title, doc.source, text or "", file_id=file_id_of(pick))
    kind = getattr(cited, "type", None)
    first, end = getattr(cited, "start_page_number", None), getattr(cited, "end_page_number", None)
    if kind == "page_location" and isinstance(first, int) and isinstance(end, int):
        start = part.page_start + max(first, 1) - 1
        last = max(end - 1, first)  # end is exclusive
        stop = min(part.page_start + last - 1, part.page_end)
        return replace(base, page_start=min(start, stop), page_end=stop)
    if doc.kind == "pdf":
        return replace(base, page_start=part.page_start, page_end=part.page_end)
    lo, hi = getattr(cited, "start_char_index", None), getattr(cited, "end_char_index", None)
    if kind == "char_location" and isinstance(lo, int) and isinstance(hi, int):
        return replace(base, char_start=lo, char_end=hi)
    return base

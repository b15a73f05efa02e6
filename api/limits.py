"""Request limits and filters, all from settings. Shared by the ask and search controllers."""

from __future__ import annotations

from collections.abc import Sequence

from api.schemas import AskFilters
from kb.errors import InvalidInput
from kb.retrieval import QUESTION_CHUNKS
from kb.service import KnowledgeBase
from kb.settings import Settings
from kb.types import Document, DocumentHit

SEARCH_MODES = ("dense", "bm25", "hybrid")


def check_question(text: str, settings: Settings, field: str = "question") -> str:
    question = text.strip()
    if not question:
        raise InvalidInput(f"{field}: must not be empty")
    if len(question) > settings.max_question_chars:
        raise InvalidInput(
            f"{field}: {len(question)} characters is over the limit of "
            f"{settings.max_question_chars}"
        )
    return question


def check_k(k: int | None, settings: Settings, field: str = "k") -> int:
    if k is None:
        return min(settings.search_k, settings.max_k)
    if not 1 <= k <= settings.max_k:
        raise InvalidInput(f"{field}: must be between 1 and {settings.max_k}, got {k}")
    return k


def check_max_documents(n: int | None, settings: Settings) -> int:
    if n is None:
        return settings.max_documents
    if not 1 <= n <= settings.max_documents:
        raise InvalidInput(
            f"max_documents: must be between 1 and {settings.max_documents}, got {n}"
        )
    return n


def check_mode(mode: str | None, settings: Settings) -> str:
    mode = mode or settings.search_mode
    if mode not in SEARCH_MODES:
        raise InvalidInput(f"mode: must be one of {', '.join(SEARCH_MODES)}, got {mode!r}")
    return mode


def matches(doc: Document, source_prefix: str | None, kind: str | None) -> bool:
    if kind and doc.kind != kind:
        return False
    return not source_prefix or any(s.startswith(source_prefix) for s in doc.sources)


def retrieve(
    kb: KnowledgeBase, question: str, n: int, filters: AskFilters | None
) -> Sequence[DocumentHit]:
    """The `n` best documents for a question, restricted by the filters when given.

    With filters the retriever is asked for more candidates (up to `max_k`) so that enough
    documents survive the filter.
    """
    if filters is None or (not filters.source_prefix and not filters.kind):
        return kb.retriever.search(question, k=n, chunks_per_doc=QUESTION_CHUNKS)
    wide = max(n, kb.settings.max_k)
    hits = kb.retriever.search(question, k=wide, pages=False)
    kept = [h for h in hits if matches(h.document, filters.source_prefix, filters.kind)]
    return kb.retriever.best_chunks(question, kept[:n], chunks_per_doc=QUESTION_CHUNKS)

"""`GET /v1/search`: ranked documents, each with its best chunks."""

from __future__ import annotations

import time
from typing import Annotated

from litestar import Controller, get
from litestar.params import QueryParameter

from api.deps import KB
from api.limits import check_k, check_mode
from api.schemas import SearchResponse, from_hit
from kb.service import check_question
from kb.types import SearchMode


class SearchController(Controller):
    path = "/search"
    tags = ("search",)

    @get("/", sync_to_thread=True, summary="Search the knowledge base")
    def search(
        self,
        kb: KB,
        q: Annotated[str, QueryParameter(description="the query text")],
        k: Annotated[int | None, QueryParameter(description="documents to return")] = None,
        mode: Annotated[
            SearchMode | None, QueryParameter(description="default: the server's KB_SEARCH_MODE")
        ] = None,
    ) -> SearchResponse:
        query = check_question(q, kb.settings, field="q")
        k = check_k(k, kb.settings)
        mode = check_mode(mode, kb.settings)
        started = time.perf_counter()
        hits = kb.search(query, k=k, mode=mode)
        elapsed = (time.perf_counter() - started) * 1000
        return SearchResponse(
            query=query,
            mode=mode,
            k=k,
            results=[from_hit(h) for h in hits],
            retrieve_ms=round(elapsed, 2),
        )

"""`GET /health` (the process is up) and `GET /ready` (it can answer)."""

from __future__ import annotations

import logging

from litestar import Controller, Response, get

from api.deps import KB
from api.schemas import Health, Readiness

log = logging.getLogger("kb.api")


class HealthController(Controller):
    path = "/"
    tags = ("health",)

    @get("/health", summary="Liveness")
    async def health(self) -> Health:
        return Health(status="ok")

    @get("/ready", sync_to_thread=True, summary="Readiness: Chroma, the model, the answerer")
    def ready(self, kb: KB) -> Response[Readiness]:
        chroma, documents, detail = True, None, ""
        try:
            kb.index.ping()
            documents = kb.index.count()
        except Exception as exc:  # any failure to reach Chroma means not ready
            log.warning("readiness: chroma unreachable: %s", exc)
            chroma, detail = False, "chroma unreachable"
        model = getattr(kb.embedder, "name", None)
        answered_by = getattr(kb.answerer, "name", None)
        ready = chroma and model is not None and answered_by is not None
        body = Readiness(ready, chroma, model, answered_by, documents, detail)
        return Response(body, status_code=200 if ready else 503)

"""The Litestar application: `create_app(settings)`.

The knowledge bases (`kb.registry`) are kept once per process from the lifespan on and closed
on shutdown: the embedding model is loaded at startup and shared, `KB_NAME`'s knowledge base is
opened then when a key (or, without keys, every request) reaches it, and any other the first
time its key is used. Handlers get their key's through the `kb` dependency (`api.deps`).
The lifespan first removes upload temp dirs a killed server left (`api.uploads`).
Every `/v1` route goes through the API-key guard; `/health`, `/ready`, the web page (`/` and
`/ui/`, `api.page`) and the OpenAPI schema and docs (`/schema`, `/schema/swagger`) do not.

Before routing, every request is logged with its request id, checked for its `Host` and, for a
write, its `Origin` (`api.security`), given a deadline on its body (`api.body`), and a HEAD is
served as the GET it asks about, without the body. After routing, `api.checks` refuses what
Litestar's lenient parsing would let through.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
from litestar import Litestar, Router
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import RedocRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.types import (
    ASGIApp,
    LifeSpanReceive,
    LifeSpanScope,
    LifeSpanSend,
    Message,
    Receive,
    Scope,
    Send,
)

from api.auth import make_guard
from api.body import body_deadline
from api.checks import check_request
from api.controllers.ask import AskController
from api.controllers.batches import BatchController
from api.controllers.documents import DocumentController
from api.controllers.health import HealthController
from api.controllers.search import SearchController
from api.deps import provide_kb
from api.errors import (
    EXCEPTION_HANDLERS,
    add_request_id_header,
    request_log_middleware,
    send_error,
)
from api.openapi import complete_schema
from api.page import page_routes
from api.security import Gate, cors_config, security_headers
from api.uploads import remove_stale_upload_dirs
from kb.embedding import Embedder
from kb.registry import KnowledgeBases
from kb.service import KnowledgeBase
from kb.settings import Settings

API_VERSION = "0.1.0"
log = logging.getLogger("kb.api")


def create_app(
    settings: Settings, *, embedder: Embedder | None = None, anthropic_client: Any = None
) -> Litestar:
    """The app for `settings`. Tests pass the session's `embedder` (and a stand-in client)."""

    @asynccontextmanager
    async def open_knowledge_bases(app: Litestar) -> AsyncIterator[None]:
        kbs = KnowledgeBases(settings, embedder=embedder, anthropic_client=anthropic_client)

        def _open() -> KnowledgeBase | None:
            kbs.embedder()
            return kbs.get(settings.kb_name) if settings.kb_name in kbs.served else None

        stale = await anyio.to_thread.run_sync(remove_stale_upload_dirs, settings.data_dir)
        if stale:
            log.info("removed %d upload temp dir(s) a stopped server left", len(stale))
        app.state.kbs = kbs
        try:
            app.state.kb = await anyio.to_thread.run_sync(_open)  # KB_NAME's, when served
            yield
        finally:
            await anyio.to_thread.run_sync(kbs.close)

    v1 = Router(
        path="/v1",
        route_handlers=[AskController, SearchController, DocumentController, BatchController],
        guards=[make_guard(settings)],
        security=[{"bearer": []}] if settings.api_keys else None,
    )
    openapi = OpenAPIConfig(
        title="kb",
        version=API_VERSION,
        description="Ask questions over ingested documents; answers cite pages and passages.",
        path="/schema",
        render_plugins=[SwaggerRenderPlugin(), RedocRenderPlugin()],
        components=Components(
            security_schemes={"bearer": SecurityScheme(type="http", scheme="bearer")}
        ),
    )
    app = KBApp(
        settings,
        route_handlers=[HealthController, v1, *page_routes()],
        lifespan=[open_knowledge_bases],
        dependencies={"kb": Provide(provide_kb)},
        exception_handlers=EXCEPTION_HANDLERS,
        before_request=check_request,
        before_send=[add_request_id_header, security_headers],
        cors_config=cors_config(settings),
        openapi_config=openapi,
        request_max_body_size=1024 * 1024,  # JSON bodies; uploads set their own limit
    )
    complete_schema(app.openapi_schema, settings)
    return app


class KBApp(Litestar):
    """Litestar, with what happens to every HTTP request before it is routed (see above)."""

    def __init__(self, settings: Settings, **config: Any) -> None:
        super().__init__(**config)
        routed = body_deadline(super().__call__, settings.body_timeout, settings.body_min_rate)
        self._front = request_log_middleware(_gate(Gate(settings), _serve_head(routed)))

    async def __call__(
        self,
        scope: Scope | LifeSpanScope,
        receive: Receive | LifeSpanReceive,
        send: Send | LifeSpanSend,
    ) -> None:
        if scope["type"] == "http":
            await self._front(scope, receive, send)  # type: ignore[arg-type]
        else:
            await super().__call__(scope, receive, send)


def _gate(gate: Gate, app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        problem = gate.problem(scope)
        if problem is None:
            await app(scope, receive, send)
        else:
            await send_error(scope, send, problem)

    return middleware


def _serve_head(app: ASGIApp) -> ASGIApp:
    """HEAD is the GET of the same resource, with its headers and without its body."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("method") != "HEAD":  # HTTP only: a websocket scope has no method
            await app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await app({**scope, "method": "GET"}, receive, headers_only)  # type: ignore[arg-type]

    return middleware


def app_from_env() -> Litestar:
    """Import-string factory for `uvicorn --factory` (used by `kb serve --workers N`)."""
    from api.logs import configure_logging

    configure_logging()
    return create_app(Settings.from_env())

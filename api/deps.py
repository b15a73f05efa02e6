"""Dependencies injected into handlers."""

from __future__ import annotations

from typing import Annotated, TypeAlias

import anyio.to_thread
from litestar import Request
from litestar.datastructures import State
from litestar.di import Dependency
from litestar.params import SkipValidationMarker

from kb.registry import KnowledgeBases
from kb.service import KnowledgeBase

# The knowledge base of the request's key; passed through as is (never validated/converted).
KB: TypeAlias = Annotated[KnowledgeBase, Dependency(kind="named"), SkipValidationMarker()]


async def provide_kb(state: State, request: Request) -> KnowledgeBase:
    """The knowledge base the request's key reaches (`api.auth`), opened on first use
    (`home_name`'s for a route without keys)."""
    kbs: KnowledgeBases = state.kbs
    name: str = getattr(request.state, "kb_name", None) or home_name(kbs)
    kb = kbs.opened(name)
    return kb if kb is not None else await anyio.to_thread.run_sync(kbs.get, name)


def home_name(kbs: KnowledgeBases) -> str:
    """The knowledge base of the routes that take no key (`/ready`): `KB_NAME`'s when a key
    (or, without keys, every request) reaches it, else the first served by name."""
    name = kbs.settings.kb_name
    return name if name in kbs.served else kbs.served[0]

"""Dependencies injected into handlers."""

from __future__ import annotations

from typing import Annotated, TypeAlias

from litestar.datastructures import State
from litestar.di import Dependency
from litestar.params import SkipValidationMarker

from kb.service import KnowledgeBase

# The knowledge base opened in the lifespan; passed through as is (never validated/converted).
KB: TypeAlias = Annotated[KnowledgeBase, Dependency(kind="named"), SkipValidationMarker()]


def provide_kb(state: State) -> KnowledgeBase:
    kb: KnowledgeBase = state.kb
    return kb

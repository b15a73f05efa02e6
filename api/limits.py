"""Request limits, all from settings. Shared by the ask and search controllers."""

from __future__ import annotations

from typing import cast

from kb.errors import InvalidInput
from kb.settings import Settings
from kb.types import SEARCH_MODES, SearchMode


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


def check_mode(mode: str | None, settings: Settings) -> SearchMode:
    mode = mode or settings.search_mode
    if mode not in SEARCH_MODES:
        raise InvalidInput(f"mode: must be one of {', '.join(SEARCH_MODES)}, got {mode!r}")
    return cast(SearchMode, mode)

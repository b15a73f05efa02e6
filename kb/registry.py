"""Several knowledge bases in one process: each opened on first use, all sharing one model.

The API serves a knowledge base per key (`KB_API_KEYS=key1=finance,key2=support`). Opening one
(Chroma, its identity, the file store) takes a moment, so it happens on the first request that
needs it, not at startup; the embedding model is loaded once and shared, and so is the
Anthropic client. Two first requests for the same knowledge base arriving at once open it
once: the second waits for the first (one lock per name, so that opening one knowledge base
never holds up requests to the others). `close` closes every one opened.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from kb.errors import Unavailable
from kb.settings import Settings

if TYPE_CHECKING:
    from kb.embedding import Embedder
    from kb.service import KnowledgeBase


class KnowledgeBases:
    def __init__(
        self,
        settings: Settings,
        *,
        embedder: Embedder | None = None,
        anthropic_client: Any = None,
    ) -> None:
        self.settings = settings
        self._embedder = embedder
        self._client = anthropic_client
        self._open: dict[str, KnowledgeBase] = {}
        self._opening: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()  # the dicts, the shared clients, `_closed`
        self._closed = False

    @property
    def served(self) -> tuple[str, ...]:
        """The names the API's keys reach, sorted (`KB_NAME`'s alone without keys)."""
        return tuple(sorted(set(self.settings.key_names.values()) or {self.settings.kb_name}))

    def embedder(self) -> Embedder:
        """The model every knowledge base shares, loaded on first call."""
        from kb.service import load_embedder

        with self._lock:
            if self._embedder is None:
                self._embedder = load_embedder(self.settings)
            return self._embedder

    def opened(self, name: str) -> KnowledgeBase | None:
        """The knowledge base `name` when it is open already (never blocks)."""
        return self._open.get(name)

    def get(self, name: str) -> KnowledgeBase:
        """The knowledge base `name`, opened now on first use (once, however many threads
        ask at the same time)."""
        if (kb := self._open.get(name)) is not None:
            return kb
        with self._lock:
            lock = self._opening.setdefault(name, threading.Lock())
        with lock:
            if (kb := self._open.get(name)) is not None:
                return kb
            kb = self._open_one(name)
            with self._lock:
                if self._closed:  # closed while it opened: nobody will close it later
                    kb.close()
                    raise Unavailable("the server is shutting down")
                self._open[name] = kb
            return kb

    def _open_one(self, name: str) -> KnowledgeBase:
        from kb.service import open_kb

        if self._closed:
            raise Unavailable("the server is shutting down")
        settings = self.settings.for_kb(name)
        embedder = self.embedder()
        with self._lock:
            if self._client is None and settings.online:
                from kb.anthropic.client import make_client

                self._client = make_client(settings)
            client = self._client
        return open_kb(settings, embedder=embedder, anthropic_client=client)

    def close(self) -> None:
        """Close every knowledge base opened (and the shared Anthropic client)."""
        with self._lock:
            self._closed = True
            kbs, self._open = list(self._open.values()), {}
        for kb in kbs:
            kb.close()
        if self._client is not None and not kbs:
            self._client.close()

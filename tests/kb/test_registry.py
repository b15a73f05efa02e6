"""Several knowledge bases in one process (`kb.registry`): each opened once on first use,
however many threads ask at the same time, all sharing one model, all closed together."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from kb.errors import Unavailable
from kb.registry import KnowledgeBases


def test_threads_asking_for_a_knowledge_base_at_once_get_one_opened_once(
    settings: Any, embedder: Any
) -> None:
    kbs = KnowledgeBases(settings.replace(api_keys=("a=finance", "b=support")), embedder=embedder)
    assert kbs.served == ("finance", "support")
    barrier = threading.Barrier(8)
    got: list[Any] = []

    def ask(name: str) -> None:
        barrier.wait()
        got.append(kbs.get(name))

    threads = [threading.Thread(target=ask, args=(n,)) for n in ["finance"] * 6 + ["support"] * 2]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        finance, support = kbs.opened("finance"), kbs.opened("support")
        assert finance is not None and support is not None and finance is not support
        assert sum(kb is finance for kb in got) == 6 and sum(kb is support for kb in got) == 2
        assert finance.embedder is support.embedder is embedder  # one model
        assert (finance.settings.kb_name, support.settings.kb_name) == ("finance", "support")
        assert finance.index.kb_id != support.index.kb_id
    finally:
        kbs.close()
    for kb in (finance, support):
        with pytest.raises(Exception):  # noqa: B017 - closed: whatever Chroma raises
            kb.index.client.heartbeat()
    assert kbs.opened("finance") is None
    with pytest.raises(Unavailable, match="shutting down"):
        kbs.get("finance")


def test_the_model_loads_on_first_use_and_once(
    settings: Any, embedder: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    loads: list[str] = []

    def load(s: Any) -> Any:
        loads.append(s.kb_name)
        return embedder

    monkeypatch.setattr("kb.service.load_embedder", load)
    kbs = KnowledgeBases(settings)
    try:
        assert loads == []
        assert kbs.get("one").embedder is kbs.get("two").embedder is embedder
        assert loads == ["default"]
    finally:
        kbs.close()

"""Session-wide fixtures: the real model loaded once, settings in a temp dir, a knowledge base."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

pytest_plugins = (
    ["tests.standin.fixtures"] if importlib.util.find_spec("tests.standin.fixtures") else []
)

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def embedder():  # type: ignore[no-untyped-def]
    from kb.embedding import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder()


@pytest.fixture
def settings(tmp_path: Path):  # type: ignore[no-untyped-def]
    from kb.settings import Settings

    return Settings(data_dir=tmp_path / "kbdata")


@pytest.fixture
def knowledge_base(settings, embedder) -> Iterator[object]:  # type: ignore[no-untyped-def]
    from kb.service import open_kb

    kb = open_kb(settings, embedder=embedder)
    yield kb
    kb.close()

"""Session-wide fixtures: the real model loaded once, settings in a temp dir, a knowledge base."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

pytest_plugins = ["tests.standin_fixtures"]

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session", autouse=True)
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One folder of ONNX graphs for the whole session, kb child processes included: each
    graph is built once, not once per data dir."""
    path = tmp_path_factory.mktemp("models")
    before = os.environ.get("KB_MODEL_CACHE")
    os.environ["KB_MODEL_CACHE"] = str(path)
    yield path
    if before is None:
        os.environ.pop("KB_MODEL_CACHE", None)
    else:
        os.environ["KB_MODEL_CACHE"] = before


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


@pytest.fixture
def env(tmp_path: Path, embedder, monkeypatch: pytest.MonkeyPatch) -> Path:  # type: ignore[no-untyped-def]
    """For commands run through `kb.cli.main`: an offline data dir, the session's model, and a
    folder of notes (a Markdown file and a two-page PDF) to ingest."""
    from standin.pdfs import make_pdf

    monkeypatch.setenv("KB_DATA_DIR", str(tmp_path / "kbdata"))
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setattr("kb.service.load_embedder", lambda settings, backend=None: embedder)
    root = tmp_path / "notes"
    root.mkdir()
    (root / "garden.md").write_text("# Garden\n\nWater tomatoes at dawn, never at noon.\n")
    make_pdf(root / "boat.pdf", ["Boat manual.", "Check the bilge pump every spring."])
    return root

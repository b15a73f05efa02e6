"""Server mode: a real `chroma run` on loopback shared by two knowledge-base handles."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest import ingest_paths
from kb.service import open_kb
from tests.processes import chroma_server

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def chroma_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with chroma_server(tmp_path_factory.mktemp("chroma-server")) as url:
        yield url


def test_ingest_and_search_through_a_chroma_server(
    chroma_url: str, settings, embedder, tmp_path: Path
) -> None:
    root = tmp_path / "docs"
    root.mkdir()
    (root / "tides.txt").write_text("Spring tides in the harbour reach four metres.\n")
    (root / "bread.md").write_text("# Bread\n\nSourdough needs a starter fed twice a day.\n")
    server_settings = settings.replace(chroma_url=chroma_url, kb_name="servertest")

    writer = open_kb(server_settings, embedder=embedder)
    report = ingest_paths(writer, [root])
    assert report.counts == {"added": 2}

    reader = open_kb(server_settings.replace(data_dir=tmp_path / "replica"), embedder=embedder)
    assert reader.index.count() == 2
    hits = reader.retriever.search("how high are the tides", k=1, mode="dense")
    assert hits[0].document.title == "tides"
    assert not (tmp_path / "replica" / "chroma").exists()  # nothing embedded locally
    again = ingest_paths(writer, [root])
    assert again.counts == {"unchanged": 2}

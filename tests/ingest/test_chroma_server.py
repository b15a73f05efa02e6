"""Server mode: a real `chroma run` on loopback shared by two knowledge-base handles."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest import ingest_paths
from kb.service import open_kb
from standin.loopback import free_port, wait_for_http

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def chroma_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    exe = shutil.which("chroma", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("the `chroma` command is not installed")
    port = free_port()
    data = tmp_path_factory.mktemp("chroma-server")
    proc = subprocess.Popen(
        [exe, "run", "--path", str(data), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/api/v2/heartbeat", proc, timeout=60)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


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

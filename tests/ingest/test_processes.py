"""Embedded Chroma shared by processes: an ingest in one process is searchable in another."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from kb.service import open_kb


def test_a_running_reader_sees_what_another_process_ingested(
    settings, embedder, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "docs"
    root.mkdir()
    (root / "tides.txt").write_text("Spring tides in the harbour reach four metres.\n")
    reader = open_kb(settings, embedder=embedder)
    try:
        from ingest.pipeline import ingest_paths

        ingest_paths(reader, [root])
        assert reader.retriever.search("harbour tides", k=1, mode="dense")[0].document.title == (
            "tides"
        )
        (root / "fog.txt").write_text("Fog horns sound every thirty seconds in dense fog.\n")
        env = {**os.environ, "KB_DATA_DIR": str(settings.data_dir), "HF_HUB_OFFLINE": "1"}
        env.pop("ANTHROPIC_API_KEY", None)
        done = subprocess.run(
            [sys.executable, "-m", "kb.cli", "ingest", str(root)],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr

        hits = reader.retriever.search("how often does the fog horn sound", k=1, mode="dense")
        assert hits[0].document.title == "fog"
    finally:
        reader.close()

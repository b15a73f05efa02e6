"""Every one of the real-world PDFs in ../shared/data/pdfs gets a status; none stops the run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ingest import ingest_paths
from tests.conftest import SHARED_DATA

PDFS = SHARED_DATA / "pdfs"
pytestmark = pytest.mark.skipif(not PDFS.is_dir(), reason="../shared/data/pdfs is absent")


def test_every_real_pdf_gets_a_status(knowledge_base) -> None:
    manifest = [json.loads(line) for line in (PDFS / "manifest.jsonl").read_text().splitlines()]
    report = ingest_paths(knowledge_base, [PDFS])

    by_path = {r.path: r for r in report.results}
    for row in manifest:
        result = by_path[str((PDFS / row["file"]).resolve())]
        assert result.status in {"added", "failed", "skipped"}, result
        if "encrypted_needs_password" in row["categories"]:
            assert result.status == "failed" and "encrypted" in result.reason
        if "encrypted_open_with_empty" in row["categories"] and result.status == "added":
            assert knowledge_base.index.get(result.doc_id).encrypted

    with_text = [r for r in report.results if r.status == "added" and "image-only" not in r.reason]
    assert len(with_text) >= 40
    assert report.counts["failed"] >= 8  # the ones that need a password, and a broken one
    distinct = [r for r in with_text if r.chunks > 1]  # many tiny files share one sentence
    for result in distinct[:10]:
        first = knowledge_base.index.chunks(result.doc_id)[0]
        query = " ".join(first.text.split()[:12])
        hits = knowledge_base.retriever.search(query, k=5, mode="dense")
        assert result.doc_id in {h.document.id for h in hits}, Path(result.path).name

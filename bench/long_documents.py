"""Long documents: does a question reach the pages that hold its answer, and at what size?

Ingests a folder of long PDFs (FinanceBench's filings by default) into one knowledge base with
the Anthropic stand-in as the Files API, serves the REST API, and for every question with
evidence pages asks `GET /v1/search` and `POST /v1/ask`. Prints:

- search: doc hit@5 (the evidence filing among the 5 documents) and page hit@5 (an evidence page
  among the first 5 distinct pages of the returned chunks, best chunk first);
- ask: the share of questions whose evidence page was sent to Claude, questions that sent no
  document, pages and estimated input tokens per question (median, p90);
- the time of a `GET /v1/search` (median, p90);
- ingest: files by status, pages/s (only when something was ingested in this run).

The knowledge base and the stand-in's files are kept in `--data-dir`, so a second run skips
the ingest (every file unchanged) and measures retrieval and selection alone.

    .venv/bin/python bench/long_documents.py [../shared/data/financebench_dev] [--data-dir D]
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# Run as a script: the repository first (the stand-in is in standin/, and bench/ingest.py
# must not shadow the ingest package).
sys.path.insert(0, str(ROOT))

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "financebench_dev"
STANDIN_FILES = "standin-files.pickle"


def load_questions(path: Path) -> list[dict[str, Any]]:
    """Questions with their evidence as (filing name, 1-based page) pairs."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        evidence = {(e["doc_name"], int(e["evidence_page_num"]) + 1) for e in row["evidence"]}
        if evidence:
            out.append(
                {"id": row["financebench_id"], "question": row["question"], "evidence": evidence}
            )
    return out


def top_pages(hits: list[dict[str, Any]], names: dict[str, str], n: int) -> list[tuple[str, int]]:
    """The first `n` distinct (filing, page) pairs of the returned chunks, best chunk first."""
    chunks = [(c["score"], names[h["document"]["id"]], c) for h in hits for c in h["chunks"]]
    chunks.sort(key=lambda t: -t[0])
    pages: list[tuple[str, int]] = []
    for _, name, chunk in chunks:
        for page in range(chunk["page_start"], chunk["page_end"] + 1):
            if (name, page) not in pages:
                pages.append((name, page))
    return pages[:n]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", nargs="?", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--data-dir", type=Path, default=ROOT / ".bench" / "long_documents")
    parser.add_argument("-k", type=int, default=5, help="documents per search (default 5)")
    parser.add_argument("--json", type=Path, help="also write per-question results here")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import httpx

    from api.app import create_app
    from ingest import ingest_paths
    from kb.service import load_embedder, open_kb
    from kb.settings import Settings
    from standin.loopback import serve_in_thread
    from standin.server import StandIn, serve

    questions = load_questions(args.data / "questions.jsonl")
    args.data_dir.mkdir(parents=True, exist_ok=True)
    standin = StandIn()
    saved = args.data_dir / STANDIN_FILES
    if saved.is_file():  # the files uploaded by an earlier run: their ids are in the records
        standin.state.files = pickle.loads(saved.read_bytes())
        standin.state._seq = max((f.seq for f in standin.state.files.values()), default=0)
    stand_server, stand_thread, base_url = serve(standin)
    settings = Settings.from_env(env_file=None).replace(
        data_dir=args.data_dir, anthropic_api_key="sk-bench", anthropic_base_url=base_url
    )
    embedder = load_embedder(settings)

    started = time.perf_counter()
    with open_kb(settings, embedder=embedder) as kb:
        report = ingest_paths(kb, [args.data / "pdfs"])
        ingest_s = time.perf_counter() - started
        moved = kb.sync()  # a knowledge base cut into other windows moves to these
    saved.write_bytes(pickle.dumps(standin.state.files))
    added = [r for r in report.results if r.status in ("added", "updated")]
    print(f"ingest: {report.counts} in {ingest_s:.1f} s", flush=True)
    if moved:
        print(f"  {len(moved)} document(s) moved to {settings.pdf_window_pages}-page windows")
    for r in report.results:
        if r.status not in ("added", "updated", "unchanged"):
            print(f"  {r.label}: {r.path}")
    if added:
        pages, chunks = sum(r.pages for r in added), sum(r.chunks for r in added)
        print(f"  {pages} pages, {chunks} chunks: {pages / ingest_s:.2f} pages/s")

    app = create_app(settings, embedder=embedder)
    server, thread, api_url = serve_in_thread(app, log_level="warning")
    rows = []
    try:
        with httpx.Client(base_url=api_url, timeout=600) as http:
            listed = http.get("/v1/documents", params={"limit": 1000}).json()["documents"]
            names = {d["id"]: Path(d["source"]).stem for d in listed}
            for q in questions:
                rows.append(_ask(http, q, names, args.k))
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        stand_server.should_exit = True
        stand_thread.join(timeout=30)
    _summary(rows)
    if args.json:
        args.json.write_text("\n".join(json.dumps(r, default=sorted) for r in rows) + "\n")
    return 0


def _ask(http: Any, q: dict[str, Any], names: dict[str, str], k: int) -> dict[str, Any]:
    evidence = q["evidence"]
    filings = {name for name, _ in evidence}
    started = time.perf_counter()
    found = http.get("/v1/search", params={"q": q["question"][:2000], "k": k})
    search_ms = (time.perf_counter() - started) * 1000
    found.raise_for_status()
    hits = found.json()["results"]
    answer = http.post("/v1/ask", json={"question": q["question"][:2000]})
    answer.raise_for_status()
    body = answer.json()
    sent = {
        (names.get(d["id"], "?"), page)
        for d in body["documents"]
        for page in range(d["page_start"], d["page_end"] + 1)
    }
    return {
        "id": q["id"],
        "doc_hit": any(names[h["document"]["id"]] in filings for h in hits[:5]),
        "page_hit": bool(set(top_pages(hits, names, 5)) & evidence),
        "sent_doc": any(name in filings for name, _ in sent),
        "sent_page": bool(sent & evidence),
        "documents_sent": len(body["documents"]),
        "pages_sent": body["pages_sent"],
        "tokens": body["estimated_input_tokens"],
        "input_tokens": body["usage"]["input_tokens"],
        "search_ms": search_ms,
    }


def _summary(rows: list[dict[str, Any]]) -> None:
    n = len(rows)

    def share(key: str) -> str:
        return f"{sum(r[key] for r in rows) / n:.3f}"

    pages = [r["pages_sent"] for r in rows]
    tokens = [r["tokens"] for r in rows]
    print(f"questions: {n}")
    print(f"search: doc hit@5 {share('doc_hit')}, page hit@5 {share('page_hit')}")
    print(
        f"ask: evidence page sent {share('sent_page')}, evidence filing sent "
        f"{share('sent_doc')}, questions sending no document "
        f"{sum(r['documents_sent'] == 0 for r in rows)}"
    )
    print(
        f"  pages per question: median {statistics.median(pages):g}, p90 "
        f"{percentile(pages, 90):g}; estimated input tokens: median "
        f"{statistics.median(tokens):,.0f}, p90 {percentile(tokens, 90):,.0f} (usage the server "
        f"reported: median {statistics.median(r['input_tokens'] for r in rows):,.0f})"
    )
    searches = [r["search_ms"] for r in rows]
    print(
        f"  GET /v1/search: median {statistics.median(searches):.0f} ms, "
        f"p90 {percentile(searches, 90):.0f} ms"
    )


if __name__ == "__main__":
    raise SystemExit(main())

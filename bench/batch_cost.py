"""Bulk questions over FinanceBench filings: request bytes, cost of single asks against one
Message Batch, and how fast kb retrieves and builds the requests.

Ingests a few filings of `shared/data/financebench_dev/pdfs/` against the Anthropic stand-in
on loopback (once: a kept `--data-dir` skips the ingest on the next run, as unchanged files
are skipped), then asks N questions (the dataset's questions about those filings, repeated
with a numbered variant to reach N) through `kb.batches.BulkQuestions`:

* kb side: the wall time of `BulkQuestions.start` (retrieving and planning every question,
  checking the files, building the requests, sending the batch) in questions per second (the
  aim: >= 20/s, so that kb is not the slow part of a batch), and of building the requests alone;
* bytes: the batch body the real SDK sent, and per request;
* cost: kb's estimate for N single asks (full price) against the same N requests in a batch
  (half price), and the cost of the answers the stand-in gave (its token counts, its cache).

    .venv/bin/python bench/batch_cost.py [--questions 200] [--filings 3] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the repository first: bench/ingest.py must not shadow ingest

DATA = ROOT.parent / "shared" / "data" / "financebench_dev"
FILINGS = ("MICROSOFT_2023_10K", "COSTCO_2021_10K", "BESTBUY_2017_10K")  # small ones


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--filings", type=int, default=3, help=f"from {', '.join(FILINGS)}")
    parser.add_argument("--data-dir", type=Path, default=None, help="kept between runs")
    args = parser.parse_args(argv)

    from ingest import ingest_paths
    from kb.batch_jobs import parse_questions, plan_from_json
    from kb.pricing import estimate_cost
    from kb.service import check_question, open_kb
    from kb.settings import Settings
    from kb.types import Usage
    from standin.server import StandIn, serve

    names = FILINGS[: args.filings]
    texts = [
        q["question"]
        for line in (DATA / "questions.jsonl").read_text().splitlines()
        if (q := json.loads(line))["doc_name"] in names
    ]
    questions_text = [
        texts[n % len(texts)] + ("" if n < len(texts) else f" (variant {n // len(texts)})")
        for n in range(args.questions)
    ]

    app = StandIn()
    app.state.batch_hold = True  # measure the sending first, then let it run
    server, thread, base_url = serve(app)
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = args.data_dir or Path(tmp) / "kbdata"
        settings = Settings(
            data_dir=data_dir,
            kb_name="financebench",
            anthropic_api_key="sk-bench",
            anthropic_base_url=base_url,
            batch_poll_seconds=0.05,
        )
        try:
            with open_kb(settings) as kb:
                started = time.perf_counter()
                report = ingest_paths(kb, [DATA / "pdfs" / f"{n}.pdf" for n in names])
                ingest_s = time.perf_counter() - started
                print(
                    f"ingest of {len(names)} filing(s): {dict(report.counts)} in {ingest_s:.1f} s"
                )
                # a kept data dir knows files the stand-in (new every run) does not have
                kb.sync()
                for doc in kb.index.documents():
                    kb.uploads.reupload(doc)

                questions = parse_questions(
                    questions_text, lambda t, f: check_question(t, settings, f)
                )
                bulk = kb.bulk()
                shutil.rmtree(bulk.store.root, ignore_errors=True)  # a kept dir: ask anew
                started = time.perf_counter()
                job = bulk.start(questions)
                start_s = time.perf_counter() - started
                started = time.perf_counter()
                for request in job.requests.values():
                    text = job.questions[request.question - 1].question
                    plan_from_json(text, request.picks).request(settings)
                build_s = time.perf_counter() - started
                (sent,) = [r for r in app.state.log if r.path == "/v1/messages/batches"]
                app.state.batch_hold = False
                started = time.perf_counter()
                job = bulk.run(questions)
                wait_s = time.perf_counter() - started
                lines = list(bulk.store.answers(job.id))
        finally:
            server.should_exit = True
            thread.join(timeout=10)

    n = len(questions)
    model = settings.claude_model
    estimated = sum(line["estimated_cost_usd"] or 0 for line in lines)  # at the batch price
    got = sum(line["usage"]["cost_usd"] or 0 for line in lines if line["error"] is None)
    tokens = sum(
        line["usage"]["input_tokens"]
        + line["usage"]["cache_write_tokens"]
        + line["usage"]["cache_read_tokens"]
        for line in lines
        if line["error"] is None
    )
    errors = sum(line["error"] is not None for line in lines)
    one = estimate_cost(model, Usage(input_tokens=1_000_000)) or 0
    print(
        f"questions: {n} over {len(names)} filing(s), {len(job.batches)} batch(es), {errors} errors"
    )
    print(
        f"kb side: BulkQuestions.start (retrieve and plan every question, check the files, "
        f"build the requests, send the batch) {start_s:.2f} s = {n / start_s:.1f} questions/s; "
        f"building the {n} requests alone {build_s * 1000:.0f} ms"
    )
    print(
        f"request bytes: batch body {sent.body_size:,} B, {sent.body_size / n:,.0f} B per request "
        f"(file_id blocks only)"
    )
    print(
        f"estimated cost ({model}, kb's estimate of the input tokens): "
        f"{n} single asks ${2 * estimated:.4f}, one batch ${estimated:.4f}"
    )
    print(
        f"stand-in answers: {tokens:,} input tokens; at the batch price ${got:.4f} "
        f"(single asks: ${2 * got:.4f}); input $ {one:.2f}/MTok full price"
    )
    print(f"waiting for the stand-in's batch and fetching results: {wait_s:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

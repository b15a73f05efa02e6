"""`/v1/batches`: many questions at once, answered through Message Batches (offline, by the
extractive answerer), as `kb ask --batch` answers them.

`POST /v1/batches` plans and sends the questions and returns the job (202; offline every
answer is written before it returns); the same questions posted again return the same job.
`GET /v1/batches/{job_id}` looks at the job's batches and reports their status and counts;
`GET /v1/batches/{job_id}/results` streams the answer lines written so far, as JSON lines.
"""

from __future__ import annotations

from collections.abc import Iterator

from litestar import Controller, get, post
from litestar.params import FromPath, JSONBody
from litestar.response import Stream

from api.deps import KB
from api.schemas import BatchJobOut, BatchRequest, from_job_status
from kb.batch_jobs import Question
from kb.service import check_question
from kb.types import SearchFilters

MAX_BODY = 32 * 1024 * 1024  # questions of one job: more than the other JSON bodies
JSON_LINES = "application/x-ndjson"


def _questions(data: BatchRequest, kb: KB) -> list[Question]:
    out = []
    for n, q in enumerate(data.questions, 1):
        text = check_question(q.question, kb.settings, f"questions[{n - 1}].question")
        f = q.filters
        filters = SearchFilters(f.source_prefix or None, f.kind) if f else None
        out.append(Question(n, text, q.id, filters or None))
    return out


class BatchController(Controller):
    path = "/batches"
    tags = ("batches",)

    @post(
        "/",
        status_code=202,
        sync_to_thread=True,
        request_max_body_size=MAX_BODY,
        summary="Answer many questions through Message Batches",
    )
    def create(self, data: JSONBody[BatchRequest], kb: KB) -> BatchJobOut:
        bulk = kb.bulk()
        return from_job_status(bulk.status(bulk.start(_questions(data, kb))))

    @get("/{job_id:str}", sync_to_thread=True, summary="A batch job's status and counts")
    def show(self, job_id: FromPath[str], kb: KB) -> BatchJobOut:
        bulk = kb.bulk()
        return from_job_status(bulk.status(bulk.step(job_id)))

    @get(
        "/{job_id:str}/results",
        sync_to_thread=True,
        media_type=JSON_LINES,
        summary="A batch job's answers so far, as JSON lines",
    )
    def results(self, job_id: FromPath[str], kb: KB) -> Stream:
        bulk = kb.bulk()
        job = bulk.step(job_id)
        path = bulk.store.answers_path(job.id)

        def lines() -> Iterator[bytes]:
            if not path.exists():
                return
            with open(path, "rb") as f:
                for line in f:
                    if line.endswith(b"\n"):
                        yield line

        return Stream(lines(), media_type=JSON_LINES)

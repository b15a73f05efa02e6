"""Bulk questions: every question asked as `kb ask` asks it, answered through Message Batches.

Online, each question is retrieved for and planned exactly as a single ask (`ClaudeAnswerer.
plan`: its page windows, `file_id` document blocks, citations, cache_control); the requests go
to Anthropic in as few Message Batches as the limits allow (`KB_BATCH_MAX_REQUESTS`,
`KB_BATCH_MAX_BYTES`), at half the price, and each result becomes an answer line as the
results are fetched, citations mapped to the originals' pages. Offline there are no batches:
each question is answered by the extractive answerer, in the same answer lines.

Every step is written down before it is taken (`kb.batch_jobs`): the requests before they
are sent, a batch (without its id) before it is created, its id as soon as it is known. A kb
stopped anywhere and run again with the same questions takes the job up where it was: a
question with an answer line is never asked again, a request in a batch is not sent again,
and a batch whose creation was cut off before its id was saved is looked for among the
workspace's batches (created since, with as many requests) before anything is sent again.
One process works on a job at a time (a claim on the job, held for each step). What is
done with Anthropic's batches is `kb.anthropic.batches`.

Files stay valid: before a batch is sent, every file_id its requests name is looked up and a
missing one's document uploaded again; a request whose result says a sent file is gone is
asked once more, with the document uploaded again, in a follow-up batch.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from kb.batch_jobs import (
    Job,
    JobStore,
    Question,
    Submission,
    job_id,
)
from kb.errors import ConfigError, InvalidInput
from kb.pricing import BATCH_DISCOUNT
from kb.retrieval import QUESTION_CHUNKS
from kb.types import Answer, DocumentHit

if TYPE_CHECKING:
    from kb.service import KnowledgeBase


@dataclass(frozen=True, slots=True)
class Progress:
    job: str
    questions: int
    answered: int
    batches: tuple[Submission, ...]
    elapsed: float  # seconds since this run started

    @property
    def done(self) -> bool:
        return self.answered >= self.questions


def status_of(job: Job, answered: int) -> str:
    """`ended` once every question has its answer line, else `in_progress`."""
    return "ended" if answered >= len(job.questions) else "in_progress"


@dataclass(frozen=True, slots=True)
class JobStatus:
    """A job as `kb batches show` and `GET /v1/batches/{id}` report it."""

    id: str
    status: str  # in_progress | ended
    answered_by: str
    model: str
    created_at: str
    questions: int
    answered: int
    errors: int
    batches: tuple[Submission, ...]


def answer_line(question: Question, answer: Answer, batch_id: str | None) -> dict[str, Any]:
    from kb.cli import to_jsonable

    return {
        "line": question.line,
        "id": question.id,
        "question": question.question,
        "answer": answer.text,
        "citations": to_jsonable(answer.citations),
        "documents": to_jsonable(answer.documents),
        "usage": to_jsonable(answer.usage),
        "estimated_cost_usd": answer.estimated_cost_usd,
        "model": answer.model,
        "answered_by": answer.answered_by,
        "notice": answer.notice,
        "batch_id": batch_id,
        "error": None,
    }


def error_line(question: Question, kind: str, message: str, batch_id: str | None) -> dict[str, Any]:
    return {
        "line": question.line,
        "id": question.id,
        "question": question.question,
        "batch_id": batch_id,
        "error": {"type": kind, "message": message},
    }


def search_for(kb: KnowledgeBase, questions: Sequence[Question]) -> list[list[DocumentHit]]:
    """What `kb ask` retrieves for each question (its filters applied), retrieved together."""
    return kb.search_many(
        [q.question for q in questions],
        [q.filters for q in questions],
        chunks_per_doc=QUESTION_CHUNKS,
    )


def at_batch_price(answer: Answer) -> Answer:
    def half(cost: float | None) -> float | None:
        return None if cost is None else round(cost * BATCH_DISCOUNT, 6)

    usage = replace(answer.usage, cost_usd=half(answer.usage.cost_usd))
    return replace(answer, usage=usage, estimated_cost_usd=half(answer.estimated_cost_usd))


class BulkQuestions:
    """The bulk-question jobs of one knowledge base (`KnowledgeBase.bulk()`)."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self.kb = kb
        self.settings = kb.settings
        self.store = JobStore(kb.settings.data_dir / "batches" / kb.settings.kb_name)

    @property
    def online(self) -> bool:
        return self.kb.anthropic is not None

    # Jobs ------------------------------------------------------------------------------

    def start(
        self, questions: list[Question], progress: Callable[[Progress], None] | None = None
    ) -> Job:
        """The job for these questions, found or made, with one step taken (offline: every
        question answered; online: the requests planned and sent)."""
        if len(questions) > self.settings.batch_max_questions:
            raise InvalidInput(
                f"{len(questions)} questions is over the limit of "
                f"{self.settings.batch_max_questions} (KB_BATCH_MAX_QUESTIONS)"
            )
        model = self.settings.claude_model if self.online else "extractive"
        ident = job_id(questions, "claude" if self.online else "extractive", model)
        with self.kb.index.claims.hold(f"batch-{ident}"):
            if self.store.find(ident) is None:
                answered_by = "claude" if self.online else "extractive"
                self.store.save(Job(ident, answered_by, model, questions))
        return self.step(ident, progress)

    def run(
        self,
        questions: list[Question],
        progress: Callable[[Progress], None] | None = None,
        on_line: Callable[[dict[str, Any]], None] | None = None,
    ) -> Job:
        """Answer every question, waiting for the batches; `on_line` gets each answer line
        once, as it is written (those of an earlier run first)."""
        started = time.monotonic()
        emitted: set[int] = set()
        read = 0  # bytes of the answers file passed on

        def emit(ident: str) -> None:
            nonlocal read
            path = self.store.answers_path(ident)
            if not path.exists():
                return
            with open(path, "rb") as f:
                f.seek(read)
                for raw in f:
                    if not raw.endswith(b"\n"):  # being written, or cut by a crash
                        break
                    read += len(raw)
                    line = json.loads(raw)
                    if line["line"] not in emitted:
                        emitted.add(line["line"])
                        if on_line:
                            on_line(line)

        def tick(p: Progress) -> None:  # offline: after each question
            emit(p.job)
            if progress:
                progress(p)

        job = self.start(questions, tick)
        while True:
            emit(job.id)
            if progress:
                progress(self.progress(job, started))
            if len(emitted) >= len(job.questions):
                return job
            time.sleep(self.settings.batch_poll_seconds)
            job = self.step(job.id)

    def status(self, job: Job) -> JobStatus:
        lines = list(self.store.answers(job.id))
        return JobStatus(
            job.id,
            status_of(job, len(lines)),
            job.answered_by,
            job.model,
            job.created_at,
            len(job.questions),
            len(lines),
            sum(line["error"] is not None for line in lines),
            tuple(job.batches),
        )

    def progress(self, job: Job, started: float) -> Progress:
        return Progress(
            job.id,
            len(job.questions),
            len(self.store.answered(job.id)),
            tuple(job.batches),
            time.monotonic() - started,
        )

    def step(self, ident: str, progress: Callable[[Progress], None] | None = None) -> Job:
        """One step on a job: whatever can be done now without waiting."""
        self.store.dir(ident)  # a job id, or NotFound, before it names a lock file
        with self.kb.index.claims.hold(f"batch-{ident}"):
            job = self.store.load(ident)
            if job.answered_by == "extractive":
                self._answer_locally(job, progress)
                return job
            if not self.online:
                raise ConfigError(
                    f"batch job {ident} is answered by Claude: set ANTHROPIC_API_KEY to go on"
                )
            from kb.anthropic.batches import ClaudeBatches

            ClaudeBatches(self.kb, self.store).step(job)
            return job

    def cancel(self, ident: str) -> Job:
        """Cancel the job's batches still running at Anthropic; their unanswered requests
        end `canceled` (answer lines with that error once fetched)."""
        self.store.dir(ident)
        with self.kb.index.claims.hold(f"batch-{ident}"):
            job = self.store.load(ident)
            if job.answered_by == "claude" and self.online:
                from kb.anthropic.batches import ClaudeBatches

                ClaudeBatches(self.kb, self.store).cancel(job)
        return self.step(ident)

    # Offline ---------------------------------------------------------------------------

    def _answer_locally(self, job: Job, progress: Callable[[Progress], None] | None) -> None:
        started = time.monotonic()
        answered = self.store.answered(job.id)
        for question in job.questions:
            if question.line in answered:
                continue
            (hits,) = search_for(self.kb, [question])
            answer = self.kb.ask(question.question, hits)
            self.store.append(job.id, answer_line(question, answer, None))
            answered.add(question.line)
            if progress:
                progress(
                    Progress(
                        job.id, len(job.questions), len(answered), (), time.monotonic() - started
                    )
                )

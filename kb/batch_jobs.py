"""Bulk-question jobs as kept on disk: the questions, the requests made for them, the Message
Batches they went in, and the answers as JSON lines.

A job lives in `data_dir/batches/<kb name>/<job id>/`: `job.json` (replaced whole, atomically,
after every change) and `answers.jsonl` (one line per answered question, appended and synced
as each answer arrives). The answers file is the record of what is done: a question with a
line there is never asked again. The job id is a hash of the questions and of what answers
them (answerer and model), so the same command run again finds the same job.

A question file has one question a line: a JSON object `{"id": ..., "question": ...,
"filters": {"source_prefix": ..., "kind": ...}}` (id and filters optional), or plain text.
Blank lines are skipped.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kb.anthropic.request import Pick, Plan, file_id_of
from kb.errors import InvalidInput, NotFound
from kb.types import DOC_KINDS, Document, Part, RemoteFile, SearchFilters

FILTER_FIELDS = ("source_prefix", "kind")
JOB_ID = re.compile(r"job_[0-9a-f]{20}")


@dataclass(frozen=True, slots=True)
class Question:
    line: int  # 1-based among the questions, as every answer line names it
    question: str
    id: str | int | None = None
    filters: SearchFilters | None = None

    def to_json(self) -> dict[str, Any]:
        filters = {k: v for k, v in asdict(self.filters).items() if v} if self.filters else None
        return {"line": self.line, "id": self.id, "question": self.question, "filters": filters}


def parse_questions(lines: Iterable[str], check: Any) -> list[Question]:
    """Questions from the lines of a question file; `check(text, field)` cleans each question
    (`kb.service.check_question`). A bad line is an InvalidInput naming its line number."""
    out: list[Question] = []
    for number, raw in enumerate(lines, 1):
        text = raw.strip()
        if not text:
            continue
        where = f"line {number}"
        if not text.startswith("{"):
            out.append(Question(len(out) + 1, check(text, f"{where}: question")))
            continue
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise InvalidInput(f"{where}: not valid JSON ({exc})") from None
        unknown = set(data) - {"id", "question", "filters"}
        if unknown:
            raise InvalidInput(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        question = data.get("question")
        if not isinstance(question, str):
            raise InvalidInput(f"{where}: `question` must be a string")
        ident = data.get("id")
        if ident is not None and (not isinstance(ident, str | int) or isinstance(ident, bool)):
            raise InvalidInput(f"{where}: `id` must be a string or an integer")
        filters = _filters(data.get("filters"), where)
        out.append(Question(len(out) + 1, check(question, f"{where}: question"), ident, filters))
    if not out:
        raise InvalidInput("the question file holds no question")
    return out


def _filters(raw: Any, where: str) -> SearchFilters | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or set(raw) - set(FILTER_FIELDS):
        raise InvalidInput(f"{where}: `filters` takes only {' and '.join(FILTER_FIELDS)}")
    prefix, kind = raw.get("source_prefix"), raw.get("kind")
    if prefix is not None and not isinstance(prefix, str):
        raise InvalidInput(f"{where}: `filters.source_prefix` must be a string")
    if kind is not None and kind not in DOC_KINDS:
        raise InvalidInput(f"{where}: `filters.kind` must be one of {', '.join(DOC_KINDS)}")
    return SearchFilters(prefix or None, kind) or None


def job_id(questions: list[Question], answered_by: str, model: str) -> str:
    data = json.dumps([[q.to_json() for q in questions], answered_by, model], sort_keys=True)
    return "job_" + hashlib.sha256(data.encode()).hexdigest()[:20]


# Picks as stored: enough of the sent document to map citations back after a restart --------


def pick_to_json(pick: Pick) -> dict[str, Any]:
    d, p = pick.document, pick.part
    return {
        "doc": [d.id, d.title, d.kind, d.mime_type, d.size_bytes, d.page_count, list(d.sources)],
        "part": [p.index, p.page_start, p.page_end],
        "file_id": file_id_of(pick),
        "score": pick.score,
    }


def pick_from_json(data: dict[str, Any]) -> Pick:
    doc_id, title, kind, mime, size, pages, sources = data["doc"]
    part = Part(*data["part"])
    fid = data["file_id"]
    files = (RemoteFile(fid, part.index, part.page_start, part.page_end),) if fid else ()
    document = Document(
        doc_id, title, kind, mime, size, pages, 0, tuple(sources), (part,), files, "anthropic"
    )
    return Pick(document, part, float(data["score"]))


def plan_from_json(question: str, picks: list[dict[str, Any]]) -> Plan:
    return Plan.of(question, [pick_from_json(p) for p in picks])


@dataclass
class Request:
    """One Messages request of a job: the question it answers and what it sends."""

    question: int  # Question.line
    attempt: int
    picks: list[dict[str, Any]]
    batch: str | None = None  # the Message Batch it went in; None until submitted

    @property
    def custom_id(self) -> str:
        return f"q{self.question}-a{self.attempt}"


@dataclass
class Submission:
    """A Message Batch of a job. Recorded (without an id) before it is sent, so that a kb
    killed while sending it knows to look for it."""

    custom_ids: list[str]
    requested_at: str
    id: str | None = None
    status: str = "sending"  # then the API's processing_status: in_progress|canceling|ended
    counts: dict[str, int] = field(default_factory=dict)
    fetched: bool = False  # every result has been handled


@dataclass
class Job:
    id: str
    answered_by: str
    model: str
    questions: list[Question]
    created_at: str = ""
    requests: dict[str, Request] = field(default_factory=dict)  # by custom_id
    batches: list[Submission] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "answered_by": self.answered_by,
            "model": self.model,
            "created_at": self.created_at,
            "questions": [q.to_json() for q in self.questions],
            "requests": {k: asdict(r) for k, r in self.requests.items()},
            "batches": [asdict(b) for b in self.batches],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Job:
        questions = [
            Question(
                q["line"],
                q["question"],
                q["id"],
                SearchFilters(**q["filters"]) if q["filters"] else None,
            )
            for q in data["questions"]
        ]
        return cls(
            data["id"],
            data["answered_by"],
            data["model"],
            questions,
            data["created_at"],
            {k: Request(**r) for k, r in data["requests"].items()},
            [Submission(**b) for b in data["batches"]],
        )


class JobStore:
    """The jobs of one knowledge base, under `root` (`data_dir/batches/<kb name>`)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def dir(self, job_id: str) -> Path:
        if not JOB_ID.fullmatch(job_id):
            raise NotFound(f"no batch job {job_id}")
        return self.root / job_id

    def load(self, job_id: str) -> Job:
        try:
            text = (self.dir(job_id) / "job.json").read_text()
        except FileNotFoundError:
            raise NotFound(f"no batch job {job_id}") from None
        return Job.from_json(json.loads(text))

    def find(self, job_id: str) -> Job | None:
        try:
            return self.load(job_id)
        except NotFound:
            return None

    def save(self, job: Job) -> None:
        folder = self.dir(job.id)
        folder.mkdir(parents=True, exist_ok=True)
        if not job.created_at:
            job.created_at = now()
        tmp = folder / f"job.json.{os.getpid()}.tmp"
        with open(tmp, "w") as out:
            json.dump(job.to_json(), out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, folder / "job.json")

    def jobs(self) -> list[Job]:
        if not self.root.is_dir():
            return []
        found = [self.find(p.name) for p in sorted(self.root.iterdir()) if p.is_dir()]
        return sorted((j for j in found if j), key=lambda j: j.created_at)

    def answers_path(self, job_id: str) -> Path:
        return self.dir(job_id) / "answers.jsonl"

    def answers(self, job_id: str) -> Iterator[dict[str, Any]]:
        """The answer lines written so far; a last line cut short by a crash is not one."""
        with contextlib.suppress(FileNotFoundError), open(self.answers_path(job_id)) as f:
            for line in f:
                if line.endswith("\n"):
                    yield json.loads(line)

    def answered(self, job_id: str) -> set[int]:
        return {a["line"] for a in self.answers(job_id)}

    def append(self, job_id: str, line: dict[str, Any]) -> None:
        """Add an answer line, synced. A line cut short by an earlier crash is dropped first."""
        path = self.answers_path(job_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a+b") as f:
            size = f.seek(0, os.SEEK_END)
            if size:
                f.seek(size - 1)
                if f.read(1) != b"\n":
                    f.seek(0)
                    whole = f.read()
                    f.truncate(whole.rfind(b"\n") + 1)
            f.seek(0, os.SEEK_END)
            f.write((json.dumps(line, ensure_ascii=False) + "\n").encode())
            f.flush()
            os.fsync(f.fileno())


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

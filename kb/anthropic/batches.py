"""Bulk questions sent to Claude through Message Batches: one step of a job at a time.

`ClaudeBatches.step` does what can be done now: finds a batch whose creation was cut off
before its id was saved, plans the questions without a request (each as `kb ask` plans it),
looks up the files the plans send (uploading a missing one's document again), sends the
requests not yet in a batch within the count and size limits, looks at the running batches,
and turns the results of an ended one into answer lines, asking a request whose sent file went
missing once more in a follow-up batch. Every change is written down (`kb.batch_jobs`) before
the call that depends on it. The job itself, the offline path and waiting are `kb.batches`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from kb.anthropic.errors import to_kb_error
from kb.batch_jobs import (
    Job,
    JobStore,
    Question,
    Request,
    Submission,
    now,
    pick_to_json,
    plan_from_json,
)
from kb.batches import answer_line, at_batch_price, error_line, search_for
from kb.errors import ConfigError, InvalidInput, NotFound
from kb.types import Document

if TYPE_CHECKING:
    from kb.anthropic.answerer import ClaudeAnswerer
    from kb.anthropic.request import Plan
    from kb.service import KnowledgeBase

PLAN_THREADS = 2  # groups of questions retrieved for at once
PLAN_GROUP = 16  # questions retrieved together (`KnowledgeBase.search_many`)
ADOPT_WINDOW = timedelta(minutes=2)  # clock skew allowed when looking for a batch sent blind


class ClaudeBatches:
    """One job's Message Batches; the caller holds the job's claim."""

    def __init__(self, kb: KnowledgeBase, store: JobStore) -> None:
        self.kb = kb
        self.settings = kb.settings
        self.store = store

    def step(self, job: Job) -> None:
        self._adopt(job)
        self._plan(job)
        self._submit(job)
        self._refresh(job)
        self._orphans(job)

    def cancel(self, job: Job) -> None:
        """Cancel the job's batches still running at Anthropic."""
        for sub in job.batches:
            if sub.id and not sub.fetched and sub.status != "ended":
                try:
                    batch = self._client().messages.batches.cancel(sub.id)
                except Exception as exc:
                    raise to_kb_error(exc, "Canceling a batch") from exc
                sub.status = batch.processing_status
        self.store.save(job)

    def _client(self) -> Any:
        if self.kb.anthropic is None:
            raise ConfigError("ANTHROPIC_API_KEY is not set")
        return self.kb.anthropic

    def _answerer(self) -> ClaudeAnswerer:
        from kb.anthropic.answerer import ClaudeAnswerer

        answerer = self.kb.answerer
        if not isinstance(answerer, ClaudeAnswerer):
            raise ConfigError("batches need the Claude answerer (ANTHROPIC_API_KEY)")
        return answerer

    def _plan(self, job: Job) -> None:
        """Plan every question that has no request yet, with every file it names present."""
        answered = self.store.answered(job.id)
        asked = {r.question for r in job.requests.values()}
        todo = [q for q in job.questions if q.line not in answered and q.line not in asked]
        if not todo:
            return
        answerer = self._answerer()

        def plan_group(group: list[Question]) -> list[Plan | None]:
            hits = search_for(self.kb, group)
            return [answerer.plan(q.question, h) for q, h in zip(group, hits, strict=True)]

        plans: list[tuple[Question, Plan]] = []
        groups = [todo[i : i + PLAN_GROUP] for i in range(0, len(todo), PLAN_GROUP)]
        with ThreadPoolExecutor(PLAN_THREADS) as pool:  # retrieval waits on Chroma
            planned = [plan for group in pool.map(plan_group, groups) for plan in group]
        for question, plan in zip(todo, planned, strict=True):
            if plan is None:
                line = answer_line(question, answerer.nothing_to_send(), None)
                self.store.append(job.id, line)
            else:
                plans.append((question, plan))
        plans = self._with_files_present(plans)
        for question, plan in plans:
            request = Request(question.line, 1, [pick_to_json(p) for p in plan.picks])
            job.requests[request.custom_id] = request
        self.store.save(job)

    def _with_files_present(
        self, plans: list[tuple[Question, Plan]]
    ) -> list[tuple[Question, Plan]]:
        """Each file_id the plans send looked up once; documents with a missing one are
        uploaded again (once each) and the plans that send them given the new ids."""
        exists = self.kb.files.exists
        file_ids = {f for _, plan in plans for f in plan.file_ids()}
        gone = {f for f in sorted(file_ids) if not exists(f)}
        if not gone:
            return plans
        answerer = self._answerer()
        renewed: dict[str, Document] = {}
        out = []
        for question, plan in plans:
            docs = {p.document.id for p in plan.picks if _sends(p, gone)}
            out.append((question, answerer.renew(plan, docs, renewed) if docs else plan))
        return out

    def _params(self, job: Job, request: Request) -> dict[str, Any]:
        question = job.questions[request.question - 1]
        return plan_from_json(question.question, request.picks).request(self.settings)

    def _submit(self, job: Job) -> None:
        """Send every request not yet in a batch, in batches within the count and size
        limits, each batch recorded before it is created and its id as soon as known."""
        answered = self.store.answered(job.id)
        pending = [
            r for r in job.requests.values() if r.batch is None and r.question not in answered
        ]
        in_flight = {c for b in job.batches if not b.fetched for c in b.custom_ids}
        pending = [r for r in pending if r.custom_id not in in_flight]
        for group in self._groups(job, pending):
            for attempt in (1, 2):
                sub = Submission([c for c, _ in group], now())
                job.batches.append(sub)
                self.store.save(job)
                if self._create(job, sub, group, last=attempt == 2):
                    break

    def _create(
        self, job: Job, sub: Submission, group: list[tuple[str, dict[str, Any]]], *, last: bool
    ) -> bool:
        """Create the batch `sub` records; True once it exists. Sent without the SDK's
        retries (a retried create can make a second batch): a refusal removes the record, and
        an answer lost on the way (a dropped connection, a 5xx) leaves it to be looked for,
        then sent again once if it is not found."""
        import anthropic

        body = [{"custom_id": c, "params": p} for c, p in group]
        try:
            batch = (
                self._client().with_options(max_retries=0).messages.batches.create(requests=body)
            )
        except Exception as exc:
            unknown = isinstance(exc, anthropic.APIConnectionError) or (
                isinstance(exc, anthropic.APIStatusError) and exc.status_code >= 500
            )
            if unknown:
                self._adopt(job)
                if sub.id is not None:
                    return True
            else:
                job.batches.remove(sub)
                self.store.save(job)
            if last or not unknown:
                raise to_kb_error(exc, "Sending a batch") from exc
            return False
        sub.id, sub.status = batch.id, batch.processing_status
        for custom_id in sub.custom_ids:
            job.requests[custom_id].batch = batch.id
        self.store.save(job)
        return True

    def _groups(
        self, job: Job, pending: list[Request]
    ) -> Iterator[list[tuple[str, dict[str, Any]]]]:
        limit, max_bytes = self.settings.batch_max_requests, self.settings.batch_max_bytes
        envelope = len('{"requests": []}')
        group: list[tuple[str, dict[str, Any]]] = []
        size = envelope
        for request in pending:
            params = self._params(job, request)
            item = len(json.dumps({"custom_id": request.custom_id, "params": params})) + 2
            if envelope + item > max_bytes:
                raise InvalidInput(
                    f"question {request.question}: its request alone ({item} bytes) is over "
                    f"KB_BATCH_MAX_BYTES={max_bytes}"
                )
            if group and (len(group) >= limit or size + item > max_bytes):
                yield group
                group, size = [], envelope
            group.append((request.custom_id, params))
            size += item
        if group:
            yield group

    def _adopt(self, job: Job) -> None:
        """A batch recorded as being sent but without its id: kb stopped while creating it.
        If the workspace has exactly one batch created since then with as many requests that
        no other submission of this job owns, it is that one; else nothing was created and
        its requests are sent again."""
        blind = [b for b in job.batches if b.id is None]
        if not blind:
            return
        known = {b.id for b in job.batches if b.id}
        try:
            recent = list(self._client().messages.batches.list(limit=100))
        except Exception as exc:
            raise to_kb_error(exc, "Listing batches") from exc
        for sub in blind:
            since = datetime.strptime(sub.requested_at, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
            matches = [
                b
                for b in recent
                if b.id not in known
                and b.created_at >= since - ADOPT_WINDOW
                and sum(b.request_counts.to_dict().values()) == len(sub.custom_ids)
            ]
            if len(matches) == 1:
                sub.id, sub.status = matches[0].id, matches[0].processing_status
                known.add(sub.id)
                for custom_id in sub.custom_ids:
                    job.requests[custom_id].batch = sub.id
            else:
                job.batches.remove(sub)
        self.store.save(job)

    def _refresh(self, job: Job) -> None:
        for sub in job.batches:
            if sub.id is None or sub.fetched:
                continue
            try:
                batch = self._client().messages.batches.retrieve(sub.id)
            except Exception as exc:
                raise to_kb_error(exc, "Reading a batch") from exc
            sub.status = batch.processing_status
            sub.counts = batch.request_counts.to_dict()
            self.store.save(job)
            if sub.status == "ended":
                self._fetch(job, sub)
        self._submit(job)  # retries the results asked for

    def _fetch(self, job: Job, sub: Submission) -> None:
        """Write an answer line for each result; a request whose sent file is gone is planned
        again (its documents uploaded again) for a follow-up batch, once."""
        assert sub.id is not None
        answerer = self._answerer()
        answered = self.store.answered(job.id)
        retries: list[tuple[Question, Plan, set[str]]] = []
        try:
            results = list(self._client().messages.batches.results(sub.id))
        except Exception as exc:
            raise to_kb_error(exc, "Fetching batch results") from exc
        seen: set[str] = set()
        for item in results:
            request = job.requests.get(item.custom_id)
            if request is None or item.custom_id not in sub.custom_ids:
                continue
            seen.add(item.custom_id)
            question = job.questions[request.question - 1]
            if question.line in answered:
                continue
            plan = plan_from_json(question.question, request.picks)
            result = item.result
            if result.type == "succeeded":
                answer = at_batch_price(answerer.build(plan, result.message, None))
                line = answer_line(question, answer, sub.id)
            elif result.type == "errored":
                kind, code, message = _error_of(result.error)
                gone = self._gone(plan, kind, code, message) if request.attempt == 1 else set()
                if gone:
                    retries.append((question, plan, gone))
                    continue
                line = error_line(question, kind, message, sub.id)
            else:  # canceled, expired, or a result type a newer API adds
                line = error_line(question, result.type, f"the request was {result.type}", sub.id)
            self.store.append(job.id, line)
            answered.add(question.line)
        renewed: dict[str, Document | None] = {}
        for question, plan, gone in retries:
            again = self._renewed(plan, gone, renewed)
            if again is None:
                line = error_line(question, "not_found", "a document it sent was removed", sub.id)
                self.store.append(job.id, line)
                answered.add(question.line)
                continue
            request = Request(question.line, 2, [pick_to_json(p) for p in again.picks])
            job.requests.setdefault(request.custom_id, request)
        for custom_id in set(sub.custom_ids) - seen:  # the API lost it: say so, never hang
            question = job.questions[job.requests[custom_id].question - 1]
            if question.line not in answered:
                self.store.append(job.id, error_line(question, "missing", "no result", sub.id))
        sub.fetched = True
        self.store.save(job)

    def _renewed(
        self, plan: Plan, gone: set[str], renewed: dict[str, Document | None]
    ) -> Plan | None:
        """A stored plan with the documents whose sent files are `gone` as their records are
        now, uploaded again unless another writer did so meanwhile (each document once across
        plans, in `renewed`); None when one of them was removed from the knowledge base. The
        stored plan holds only the parts it sent, so the record is read afresh: the upload
        must keep every part of the document."""
        from kb.anthropic.request import Pick, Plan

        for pick in plan.picks:
            doc_id = pick.document.id
            if not _sends(pick, gone) or doc_id in renewed:
                continue
            current = self.kb.index.get(doc_id)
            try:
                if current is not None and {f.file_id for f in current.files} & gone:
                    current = self.kb.uploads.reupload(current)
            except NotFound:
                current = None
            renewed[doc_id] = current
        picks: list[Pick] = []
        for pick in plan.picks:
            if pick.document.id not in renewed:
                picks.append(pick)
                continue
            doc = renewed[pick.document.id]
            if doc is None:
                return None
            picks.append(replace(pick, document=doc))
        return Plan.of(plan.question, picks)

    def _gone(self, plan: Plan, kind: str, code: str | None, message: str) -> set[str]:
        from kb.anthropic.answerer import about_missing_file, named_files

        if not about_missing_file(kind, code, message):
            return set()
        sent = plan.file_ids()
        named = named_files(message) & sent
        return named or {f for f in sent if not self.kb.files.exists(f)}

    def _orphans(self, job: Job) -> None:
        """Questions all of whose requests were handled without an answer line (a crash
        between a retry's decision and its record): planned again next step."""
        answered = self.store.answered(job.id)
        live = {
            r.question
            for r in job.requests.values()
            if r.batch is None or any(b.id == r.batch and not b.fetched for b in job.batches)
        }
        stale = [k for k, r in job.requests.items() if r.question not in answered | live]
        if stale:
            for key in stale:
                del job.requests[key]
            self.store.save(job)


def _sends(pick: Any, file_ids: set[str]) -> bool:
    from kb.anthropic.request import file_id_of

    return file_id_of(pick) in file_ids


def _error_of(envelope: Any) -> tuple[str, str | None, str]:
    """(type, error_code, message) of an errored result's error envelope."""
    error = getattr(envelope, "error", None)
    kind = str(getattr(error, "type", None) or "api_error")
    message = str(getattr(error, "message", None) or "")
    details = getattr(error, "details", None)
    code = getattr(details, "error_code", None)
    if code is None and isinstance(details, dict):
        code = details.get("error_code")
    return kind, code if isinstance(code, str) else None, message

"""Message Batches of the stand-in (contract §7): create, retrieve, list, cancel, delete, and
the JSONL results at `results_url`, which names the stand-in's own host.

A batch moves over time as it is looked at: each retrieval processes up to
`State.batch_pace` more of its requests, in an order of its own, through the same
`/v1/messages` code (a request that fails there is `errored` with the full error envelope);
`State.batch_hold` keeps every batch `in_progress` untouched. A cancel makes the batch
`canceling`, and the next look ends it with every unprocessed request `canceled`; a batch still
unfinished `State.batch_ttl` seconds after its creation ends with the rest `expired`. Results
are served once the batch has ended, in an order unrelated to the requests'.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from standin import messages
from standin.files_api import around, list_limit
from standin.messages import ApiError
from standin.store import State, new_id, rfc3339

CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


@dataclass
class Batch:
    id: str
    requests: list[dict[str, Any]]  # {"custom_id", "params"} as sent
    created_at: datetime
    order: list[int]  # the order requests are processed in
    results: dict[str, dict[str, Any]] = field(default_factory=dict)  # custom_id -> result
    cancel_initiated_at: datetime | None = None
    ended_at: datetime | None = None
    seq: int = 0

    @property
    def expires_at(self) -> datetime:
        return self.created_at + timedelta(hours=24)

    def status(self) -> str:
        if self.ended_at is not None:
            return "ended"
        return "canceling" if self.cancel_initiated_at is not None else "in_progress"

    def counts(self) -> dict[str, int]:
        counts = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
        for request in self.requests:
            result = self.results.get(request["custom_id"])
            counts[result["type"] if result else "processing"] += 1
        return counts

    def view(self, host: str, fractional: bool) -> dict[str, Any]:
        def ts(value: datetime | None) -> str | None:
            return rfc3339(value, fractional) if value else None

        ended = self.ended_at is not None
        return {
            "id": self.id,
            "type": "message_batch",
            "processing_status": self.status(),
            "request_counts": self.counts(),
            "created_at": ts(self.created_at),
            "expires_at": ts(self.expires_at),
            "ended_at": ts(self.ended_at),
            "cancel_initiated_at": ts(self.cancel_initiated_at),
            "archived_at": None,
            "results_url": f"http://{host}/v1/messages/batches/{self.id}/results"
            if ended
            else None,
        }


def _bad(message: str) -> ApiError:
    return ApiError(400, "invalid_request_error", message)


def create(state: State, body: Any) -> Batch:
    requests = body.get("requests") if isinstance(body, dict) else None
    if not isinstance(requests, list) or not requests:
        raise _bad("requests: Field required")
    if len(requests) > state.max_batch_requests:
        raise _bad(f"requests: at most {state.max_batch_requests} requests may be in one batch")
    seen: set[str] = set()
    for n, request in enumerate(requests):
        custom_id = request.get("custom_id") if isinstance(request, dict) else None
        if not isinstance(custom_id, str) or not CUSTOM_ID.match(custom_id):
            raise _bad(f"requests.{n}.custom_id: must match {CUSTOM_ID.pattern}")
        if custom_id in seen:
            raise _bad(f"requests.{n}.custom_id: `{custom_id}` is not unique in the batch")
        seen.add(custom_id)
        params = request.get("params")
        if not isinstance(params, dict):
            raise _bad(f"requests.{n}.params: Field required")
        for name, kind in (("model", str), ("messages", list), ("max_tokens", int)):
            if not isinstance(params.get(name), kind):
                raise _bad(f"requests.{n}.params.{name}: Field required")
        if params.get("stream"):
            raise _bad(f"requests.{n}.params.stream: streaming is not supported in batches")
    order = list(range(len(requests)))
    random.shuffle(order)
    with state.lock:
        state.batch_seq += 1
        batch = Batch(new_id("msgbatch_"), requests, datetime.now(UTC), order, seq=state.batch_seq)
        state.batches[batch.id] = batch
    return batch


def advance(state: State, batch: Batch) -> None:
    """What happened to the batch since it was last looked at."""
    if batch.ended_at is not None:
        return
    now = datetime.now(UTC)
    waiting = [i for i in batch.order if batch.requests[i]["custom_id"] not in batch.results]
    if batch.cancel_initiated_at is not None or now >= batch.created_at + timedelta(
        seconds=state.batch_ttl
    ):
        kind = "canceled" if batch.cancel_initiated_at is not None else "expired"
        for i in waiting:
            batch.results[batch.requests[i]["custom_id"]] = {"type": kind}
        batch.ended_at = now
        return
    if state.batch_hold:
        return
    for i in waiting[: state.batch_pace]:
        request = batch.requests[i]
        batch.results[request["custom_id"]] = _process(state, request["params"])
    if len(batch.results) == len(batch.requests):
        batch.ended_at = now


def _process(state: State, params: dict[str, Any]) -> dict[str, Any]:
    try:
        message = messages.message(state, params)
    except ApiError as err:
        error: dict[str, Any] = {"type": err.error_type, "message": err.message}
        if err.error_code:
            error["details"] = {"error_code": err.error_code}
        return {
            "type": "errored",
            "error": {"type": "error", "error": error, "request_id": None},
        }
    message["usage"]["service_tier"] = "batch"
    return {"type": "succeeded", "message": message}


def get(state: State, batch_id: str) -> Batch:
    batch = state.batches.get(batch_id)
    if batch is None:
        raise ApiError(404, "not_found_error", f"Message batch `{batch_id}` not found.")
    return batch


def cancel(state: State, batch: Batch) -> None:
    if batch.ended_at is None and batch.cancel_initiated_at is None:
        batch.cancel_initiated_at = datetime.now(UTC)


def delete(state: State, batch: Batch) -> dict[str, Any]:
    if batch.ended_at is None:
        raise _bad(f"Message batch `{batch.id}` cannot be deleted while it is in progress.")
    with state.lock:
        state.batches.pop(batch.id, None)
    return {"id": batch.id, "type": "message_batch_deleted"}


def listing(
    state: State, query: dict[str, list[str]], host: str, fractional: bool
) -> dict[str, Any]:
    """The legacy cursor scheme (contract §7): after_id/before_id/limit, newest first."""

    limit = list_limit(query)
    batches = sorted(state.batches.values(), key=lambda b: b.seq, reverse=True)
    after = query["after_id"][0] if "after_id" in query else None
    before = query["before_id"][0] if "before_id" in query else None
    if after or before:
        window, more = around(batches, [b.id for b in batches], after, before, limit)
    else:
        window, more = batches[:limit], limit < len(batches)
    return {
        "data": [b.view(host, fractional) for b in window],
        "has_more": more,
        "first_id": window[0].id if window else None,
        "last_id": window[-1].id if window else None,
    }


def results(state: State, batch: Batch) -> bytes:
    if batch.ended_at is None:
        raise _bad(f"Message batch `{batch.id}` is still processing; results are not ready.")
    import json

    lines = [
        json.dumps({"custom_id": r["custom_id"], "result": batch.results[r["custom_id"]]})
        for r in batch.requests
    ]
    random.shuffle(lines)  # any order, as the API promises
    return "".join(line + "\n" for line in lines).encode()

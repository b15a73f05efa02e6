"""The stand-in's Message Batches follow the contract (§7), checked with the real SDK."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx
import pytest

from standin.pdfs import pdf_bytes

H = {"x-api-key": "sk-test", "anthropic-version": "2023-06-01"}


@pytest.fixture
def client(standin: Any) -> Any:
    c = anthropic.Anthropic(api_key="sk-test", base_url=standin.base_url, max_retries=0)
    yield c
    c.close()


def _params(file_id: str, question: str = "When is the pump checked?") -> dict[str, Any]:
    return {
        "model": "claude-sonnet-5-5",
        "max_tokens": 256,
        "messages": [
            {
                "role": "user",
                "content": [
                    {
                        "type": "document",
                        "source": {"type": "file", "file_id": file_id},
                        "citations": {"enabled": True},
                    },
                    {"type": "text", "text": question},
                ],
            }
        ],
    }


def _file(client: Any) -> str:
    data = pdf_bytes(["Boat manual.", "Check the bilge pump every spring."])
    return str(client.files.upload(file=("boat.pdf", data, "application/pdf")).id)


def test_a_batch_moves_over_time_and_ends_with_mixed_results(standin: Any, client: Any) -> None:
    standin.state.batch_pace = 2
    file_id = _file(client)
    requests = [{"custom_id": f"q-{n}", "params": _params(file_id)} for n in range(4)]
    requests.append({"custom_id": "gone", "params": _params("file_missing000000000000000")})
    batch = client.messages.batches.create(requests=requests)
    assert batch.processing_status == "in_progress" and batch.results_url is None
    assert batch.request_counts.processing == 5
    assert (batch.expires_at - batch.created_at).total_seconds() == 24 * 3600
    seen = client.messages.batches.retrieve(batch.id)  # two more processed each look
    assert seen.request_counts.processing == 3 and seen.processing_status == "in_progress"
    early = httpx.get(f"{standin.base_url}/v1/messages/batches/{batch.id}/results", headers=H)
    assert early.status_code == 400  # no results before the batch has ended
    with pytest.raises(anthropic.AnthropicError, match="results_url"):
        client.messages.batches.results(batch.id)  # it retrieves the batch first: a look
    canceling = client.messages.batches.cancel(batch.id)
    assert canceling.processing_status == "canceling" and canceling.cancel_initiated_at
    ended = client.messages.batches.retrieve(batch.id)
    counts = ended.request_counts
    assert ended.processing_status == "ended" and counts.processing == 0
    assert counts.canceled == 1 and counts.succeeded + counts.errored == 4
    # results_url names the stand-in's own host, and the SDK follows it as given
    assert ended.results_url == f"{standin.base_url}/v1/messages/batches/{batch.id}/results"
    results = {r.custom_id: r.result for r in client.messages.batches.results(batch.id)}
    assert set(results) == {r["custom_id"] for r in requests}
    assert sum(r.type == "canceled" for r in results.values()) == 1
    for result in results.values():
        if result.type == "succeeded":
            assert result.message.usage.service_tier == "batch"
            assert result.message.content[-1].citations[0].start_page_number == 2
        if result.type == "errored":
            assert result.error.error.type == "not_found_error"
    fetch = standin.requests("GET", f"/v1/messages/batches/{batch.id}/results")[-1]
    assert fetch.header("accept") == "application/binary"


def test_results_come_in_any_order_and_errors_carry_the_envelope(standin: Any, client: Any) -> None:
    file_id = _file(client)
    requests = [{"custom_id": f"q-{n:02}", "params": _params(file_id)} for n in range(30)]
    requests[7]["params"]["messages"][0]["content"][0]["source"]["file_id"] = "file_nope"
    batch = client.messages.batches.create(requests=requests)
    assert client.messages.batches.retrieve(batch.id).processing_status == "ended"
    order = [r.custom_id for r in client.messages.batches.results(batch.id)]
    assert sorted(order) == [r["custom_id"] for r in requests] and order != sorted(order)
    raw = httpx.get(f"{standin.base_url}/v1/messages/batches/{batch.id}/results", headers=H)
    errored = [line for line in raw.text.splitlines() if '"errored"' in line]
    assert len(errored) == 1 and '"request_id": null' in errored[0]
    assert '"custom_id": "q-07"' in errored[0]


def test_an_unfinished_batch_expires(standin: Any, client: Any) -> None:
    standin.state.batch_hold = True
    batch = client.messages.batches.create(
        requests=[{"custom_id": "a", "params": _params(_file(client))}]
    )
    assert client.messages.batches.retrieve(batch.id).processing_status == "in_progress"
    standin.state.batch_ttl = 0
    ended = client.messages.batches.retrieve(batch.id)
    assert ended.processing_status == "ended" and ended.request_counts.expired == 1
    assert [r.result.type for r in client.messages.batches.results(batch.id)] == ["expired"]


def test_create_is_validated_whole(standin: Any, client: Any) -> None:
    params = _params("file_x")
    bad = [
        [],
        [{"custom_id": "a", "params": params}, {"custom_id": "a", "params": params}],
        [{"custom_id": "no spaces allowed", "params": params}],
        [{"custom_id": "a", "params": {"model": "m", "messages": []}}],
        [{"custom_id": "a", "params": {**params, "stream": True}}],
    ]
    for requests in bad:
        with pytest.raises(anthropic.BadRequestError):
            client.messages.batches.create(requests=requests)
    standin.state.max_batch_requests = 2
    with pytest.raises(anthropic.BadRequestError, match="at most 2"):
        client.messages.batches.create(
            requests=[{"custom_id": f"r{n}", "params": params} for n in range(3)]
        )
    standin.state.max_batch_bytes = 500
    with pytest.raises(anthropic.APIStatusError) as too_large:
        client.messages.batches.create(
            requests=[{"custom_id": f"r{n}", "params": params} for n in range(2)]
        )
    assert too_large.value.status_code == 413
    assert standin.state.batches == {}


def test_list_pages_with_the_old_cursors_and_delete_needs_an_ended_batch(
    standin: Any, client: Any
) -> None:
    standin.state.batch_hold = True
    ids = [
        client.messages.batches.create(requests=[{"custom_id": "a", "params": _params("f")}]).id
        for _ in range(3)
    ]
    page = client.messages.batches.list(limit=2)
    assert [b.id for b in page.data] == ids[::-1][:2] and page.has_more
    assert [b.id for b in client.messages.batches.list(limit=2)] == ids[::-1]  # auto-pagination
    with pytest.raises(anthropic.BadRequestError):
        client.messages.batches.delete(ids[0])
    client.messages.batches.cancel(ids[0])
    client.messages.batches.retrieve(ids[0])
    assert client.messages.batches.delete(ids[0]).type == "message_batch_deleted"
    with pytest.raises(anthropic.NotFoundError):
        client.messages.batches.retrieve(ids[0])

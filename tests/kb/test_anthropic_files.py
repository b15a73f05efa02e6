"""AnthropicFileStore through the real SDK over HTTP against the stand-in."""

from __future__ import annotations

from typing import Any

import pytest

from kb.anthropic.client import make_client
from kb.anthropic.files import AnthropicFileStore
from kb.errors import (
    InvalidInput,
    RateLimited,
    UpstreamAuthError,
    UpstreamError,
    UpstreamRejected,
    UpstreamTimeout,
)
from standin.pdfs import pdf_bytes

DOC = "ab" * 32
KB_ID = "0123456789abcdef"  # the knowledge base's identity (`kb.index.Index.kb_id`)
OTHER_ID = "fedcba9876543210"  # another install's


@pytest.fixture
def store(online_settings: Any) -> Any:
    client = make_client(online_settings)
    yield AnthropicFileStore(client, online_settings, KB_ID)
    client.close()


def _posts(standin: Any) -> int:
    return len(standin.requests("POST", "/v1/files"))


def test_upload_exists_list_delete(store: Any, standin: Any) -> None:
    pdf = pdf_bytes(["one", "two"])
    pdf_id = store.upload(DOC, 0, "report.pdf", "application/pdf", pdf)
    txt_id = store.upload(DOC, 1, "dir/notes.md", "text/plain", b"hello notes")
    standin.state.add_file("someone-else.txt", "text/plain", b"not ours")

    stored = {f.file_id: f for f in store.list()}
    assert set(stored) == {pdf_id, txt_id}
    assert stored[pdf_id].filename == f"kb-default-{KB_ID}-{DOC[:32]}-p0-report.pdf"
    assert stored[txt_id].filename == f"kb-default-{KB_ID}-{DOC[:32]}-p1-notes.md"
    assert standin.state.files[pdf_id].mime_type == "application/pdf"
    assert standin.state.files[txt_id].mime_type == "text/plain"
    assert standin.state.files[pdf_id].data == pdf
    post = standin.requests("POST", "/v1/files")[0]
    assert post.header("authorization") == "Bearer sk-test"
    assert post.header("content-type").startswith("multipart/form-data")

    assert store.exists(pdf_id)
    store.delete(pdf_id)
    assert not store.exists(pdf_id)
    store.delete(pdf_id)  # already gone: not an error
    assert [f.file_id for f in store.list()] == [txt_id]


def test_upload_is_idempotent(store: Any, standin: Any) -> None:
    first = store.upload(DOC, 0, "a.txt", "text/plain", b"same bytes")
    again = store.upload(DOC, 0, "a.txt", "text/plain", b"same bytes")
    assert first == again
    assert _posts(standin) == 1
    assert len(standin.state.files) == 1


def test_earlier_upload_by_another_run_is_found(online_settings: Any, standin: Any) -> None:
    first = AnthropicFileStore(make_client(online_settings), online_settings, KB_ID)
    file_id = first.upload(DOC, 0, "a.txt", "text/plain", b"bytes")
    second = AnthropicFileStore(make_client(online_settings), online_settings, KB_ID)
    assert second.upload(DOC, 0, "a.txt", "text/plain", b"bytes") == file_id
    assert _posts(standin) == 1


def test_another_install_of_the_same_name_uploads_its_own_copy(
    online_settings: Any, standin: Any
) -> None:
    ours = AnthropicFileStore(make_client(online_settings), online_settings, KB_ID)
    file_id = ours.upload(DOC, 0, "a.txt", "text/plain", b"bytes")
    theirs = AnthropicFileStore(make_client(online_settings), online_settings, OTHER_ID)
    their_id = theirs.upload(DOC, 0, "a.txt", "text/plain", b"bytes")
    assert their_id != file_id and _posts(standin) == 2
    assert [f.file_id for f in ours.list()] == [file_id]
    assert [f.file_id for f in theirs.list()] == [their_id]


def test_files_named_before_identities_are_listed_but_never_reused(
    store: Any, standin: Any
) -> None:
    old = standin.state.add_file(f"kb-default-{DOC[:32]}-p0-a.txt", "text/plain", b"bytes")
    other_name = standin.state.add_file(f"kb-other-{DOC[:32]}-p0-a.txt", "text/plain", b"bytes")
    new = store.upload(DOC, 0, "a.txt", "text/plain", b"bytes")
    assert new not in (old.id, other_name.id) and _posts(standin) == 1
    assert [f.file_id for f in store.list()] == [new, old.id]


def test_list_follows_next_page(store: Any, standin: Any) -> None:
    for n in range(1003):
        standin.state.add_file(f"kb-default-{KB_ID}-{n:032x}-p0-{n}.txt", "text/plain", b"x")
    standin.state.add_file(f"kb-other-{KB_ID}-{0:032x}-p0-x.txt", "text/plain", b"x")
    standin.state.add_file(f"kb-other-{0:032x}-p0-x.txt", "text/plain", b"x")
    standin.state.add_file(f"kb-default-{OTHER_ID}-{0:032x}-p0-x.txt", "text/plain", b"x")
    standin.state.add_file("holiday.jpg", "image/jpeg", b"x")
    names = [f.filename for f in store.list()]
    # Another knowledge base's files, another install's of the same name, and foreign files
    # are not ours.
    assert len(names) == 1003
    assert names[0].endswith("-p0-1002.txt")  # newest first
    pages = standin.requests("GET", "/v1/files")
    assert len(pages) == 2
    assert "page=page_" in pages[1].query and "limit=1000" in pages[1].query


@pytest.mark.parametrize("kind", ["after_status", "after_drop"])
def test_failure_after_storing_is_reconciled_by_listing(
    store: Any, standin: Any, kind: str
) -> None:
    store.list()  # nothing there yet
    standin.inject("/v1/files", kind=kind, status=500)
    file_id = store.upload(DOC, 0, "r.txt", "text/plain", b"stored despite the error")
    assert list(standin.state.files) == [file_id]
    assert _posts(standin) == 1  # no second upload
    methods = [(r.method, r.path) for r in standin.log]
    assert methods[-1] == ("GET", "/v1/files")  # found by listing


@pytest.mark.parametrize("kind", ["status", "drop"])
def test_failure_before_storing_is_sent_again_once(store: Any, standin: Any, kind: str) -> None:
    standin.inject("/v1/files", kind=kind, status=503)
    file_id = store.upload(DOC, 0, "r.txt", "text/plain", b"payload")
    assert list(standin.state.files) == [file_id]
    assert _posts(standin) == 2


def test_persistent_5xx_becomes_upstream_error(store: Any, standin: Any) -> None:
    standin.inject("/v1/files", status=500, times=10)
    with pytest.raises(UpstreamError, match=r"Uploading r\.txt failed"):
        store.upload(DOC, 0, "r.txt", "text/plain", b"payload")
    assert not standin.state.files


def test_errors_map_to_kb_errors(store: Any, standin: Any) -> None:
    standin.app.api_keys = {"sk-other"}
    with pytest.raises(UpstreamAuthError, match="Anthropic rejected kb's API key") as auth:
        list(store.list())
    assert auth.value.status == 502 and "ANTHROPIC_API_KEY" in str(auth.value)
    standin.app.api_keys = None

    standin.state.max_file_bytes = 10
    with pytest.raises(UpstreamRejected, match="Request exceeds the maximum") as big:
        store.upload(DOC, 0, "big.txt", "text/plain", b"x" * 11)
    assert big.value.status == 502  # Anthropic's 413, not the caller's

    standin.inject("/v1/files", status=429, headers={"retry-after": "30"})
    with pytest.raises(RateLimited) as info:
        store.upload(DOC, 0, "r.txt", "text/plain", b"x")
    assert info.value.hint == "retry after 30 s"
    assert _posts(standin) == 2  # the 413 and the 429: a 429 upload is not retried blindly


def test_more_refusals_map_to_upstream_errors(store: Any, standin: Any) -> None:
    standin.state.storage_quota = 3
    with pytest.raises(UpstreamRejected, match="Storage quota exceeded"):
        store.upload(DOC, 0, "r.txt", "text/plain", b"payload")
    standin.inject("/v1/files", method="GET", status=403, error_type="permission_error")
    with pytest.raises(UpstreamAuthError, match="not permitted for kb's API key") as denied:
        list(store.list())
    assert denied.value.exit_code == 2 and "ANTHROPIC_API_KEY" in str(denied.value.hint)


def test_timeout_is_an_upstream_error(online_settings: Any, standin: Any) -> None:
    client = make_client(online_settings).with_options(timeout=0.3, max_retries=0)
    store = AnthropicFileStore(client, online_settings, KB_ID)
    standin.inject("/v1/files", method="GET", kind="slow", delay=1.0)
    with pytest.raises(UpstreamTimeout, match="Listing files timed out") as info:
        list(store.list())
    assert isinstance(info.value, UpstreamError)
    assert (info.value.status, info.value.code) == (504, "upstream_timeout")


def test_explicit_types_and_valid_names(store: Any, standin: Any) -> None:
    md = store.upload(DOC, 0, "guide.md", "text/markdown", b"\xef\xbb\xbf# Guide\n")
    jpg = store.upload(DOC, 1, "photo.jpg", "image/jpg", b"\xff\xd8\xff\xe0 jpeg")
    long_name = 'a<b>c:d"e|f?g*h\\i\x01' + "x" * 400 + ".pdf"
    pdf = store.upload(DOC, 2, long_name, "application/pdf", pdf_bytes(["p"]))
    files = standin.state.files
    assert files[md].mime_type == "text/plain" and files[md].data == b"# Guide\n"  # no BOM
    assert files[jpg].mime_type == "image/jpeg"
    name = files[pdf].filename
    assert (
        len(name) == 255
        and name.endswith("x.pdf")
        and name.startswith(f"kb-default-{KB_ID}-{DOC[:32]}-p2-")
    )
    assert not set('<>:"|?*\\/') & set(name) and all(ord(c) >= 32 for c in name)
    parts = [r for r in standin.requests("POST", "/v1/files")]
    assert len(parts) == 3  # each sent once, with its type named explicitly
    with pytest.raises(InvalidInput, match="cannot be attached"):
        store.upload(DOC, 3, "sheet.xlsx", "application/octet-stream", b"PK")
    assert len(standin.requests("POST", "/v1/files")) == 3


def test_timed_out_upload_stored_later_is_found_not_duplicated(
    online_settings: Any, standin: Any
) -> None:
    settings = online_settings.replace(upload_timeout=0.5)
    store = AnthropicFileStore(make_client(settings), settings, KB_ID)
    standin.inject("/v1/files", kind="slow", delay=0.7)  # stored after the client gave up
    file_id = store.upload(DOC, 0, "slow.txt", "text/plain", b"slow but stored")
    assert list(standin.state.files) == [file_id]
    assert _posts(standin) == 1


def test_copy_of_a_failed_attempt_is_deleted_after_the_retry(
    online_settings: Any, standin: Any
) -> None:
    settings = online_settings.replace(upload_timeout=1.0)
    store = AnthropicFileStore(make_client(settings), settings, KB_ID)
    store.backoff = 0.05  # reconcile before the slow server has stored the first copy
    standin.inject("/v1/files", kind="slow", delay=1.5)  # times out; stored at 1.5 s
    standin.inject("/v1/files", kind="slow", delay=0.8)  # the retry succeeds after that
    file_id = store.upload(DOC, 0, "slow.txt", "text/plain", b"slow but stored")
    assert _posts(standin) == 2
    assert list(standin.state.files) == [file_id]  # the first attempt's copy was deleted
    assert len(standin.requests("DELETE", "/v1/files/" + file_id)) == 0
    assert len([r for r in standin.log if r.method == "DELETE"]) == 1


def test_earlier_upload_found_beyond_the_first_page(online_settings: Any, standin: Any) -> None:
    standin.state.quirks.fractional_seconds = False
    first = AnthropicFileStore(make_client(online_settings), online_settings, KB_ID)
    file_id = first.upload(DOC, 0, "old.txt", "text/plain", b"uploaded long ago")
    for n in range(1200):  # newer files push it to page 2 (newest first, 1000 a page)
        standin.state.add_file(f"kb-{n:064d}-p0-x.txt", "text/plain", b"x")
    second = AnthropicFileStore(make_client(online_settings), online_settings, KB_ID)
    assert second.upload(DOC, 0, "old.txt", "text/plain", b"uploaded long ago") == file_id
    assert _posts(standin) == 1
    pages = standin.requests("GET", "/v1/files")
    assert "page=page_" in pages[-1].query
    created = next(f.created_at for f in second.list() if f.file_id == file_id)
    assert created.endswith("+00:00") and "." not in created


def test_non_json_502_on_upload_is_readable(store: Any, standin: Any) -> None:
    standin.inject("/v1/files", kind="html", status=502, times=3)
    with pytest.raises(UpstreamError) as info:
        store.upload(DOC, 0, "r.txt", "text/plain", b"payload")
    assert "HTTP 502 with a non-JSON body: 502 Bad Gateway nginx" in str(info.value)
    assert _posts(standin) == 3 and not standin.state.files


def test_knowledge_bases_sharing_a_workspace_keep_their_own_files(
    online_settings: Any, standin: Any, embedder: Any
) -> None:
    from kb.service import open_kb

    a = online_settings.replace(kb_name="a")
    first = AnthropicFileStore(make_client(online_settings), a, KB_ID)
    kept = first.upload(DOC, 0, "a.txt", "text/plain", b"same bytes")
    other = open_kb(online_settings.replace(kb_name="b", gc_grace_seconds=0), embedder=embedder)
    try:
        orphan = other.files.upload(DOC, 0, "a.txt", "text/plain", b"same bytes")
        assert orphan != kept  # not reused across knowledge bases
        assert [f.file_id for f in other.collect_garbage().deleted] == [orphan]
    finally:
        other.close()
    assert first.exists(kept)

"""The web page in a real browser: ask (offline and through the Anthropic stand-in), search,
upload, delete, keys, errors as sentences, the keyboard and a phone-sized screen."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kb.settings import Settings
from tests.api.conftest import API_KEY, Running, serve, upload
from tests.web.conftest import ETNA, WAIT_MS, Shots, missing_browser

if (why := missing_browser()) is not None:
    pytest.skip(why, allow_module_level=True)

ETNA_ID = hashlib.sha256(ETNA).hexdigest()
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
UPLOAD_LIMIT = 64 * 1024


def ask(page: Any, question: str, *, done: str) -> None:
    page.fill("#question", question)
    page.click("#ask-button")
    page.wait_for_function(
        "(text) => document.getElementById('ask-status').textContent === text", arg=done
    )


def open_citation(page: Any, mark: Any, shots: Shots, name: str) -> tuple[Any, Any]:
    """Clicks the citation's link to the original; returns the tab the browser opened and
    the response the page fetched the original from."""
    fetched: list[tuple[str, Any, bytes]] = []

    def record(route: Any) -> None:  # passes the server's answer on, keeping a copy
        response = route.fetch()
        fetched.append((route.request.url, response, response.body()))
        route.fulfill(response=response)

    page.route("**/original", record)
    mark.click()
    with page.context.expect_page() as opened:
        page.locator("#cite-detail a.original").click()
    original = opened.value
    original.wait_for_load_state()
    original.wait_for_timeout(500)  # the PDF viewer draws after the load event
    shots(original, name)
    page.unroute("**/original")
    [got] = fetched
    return original, got


def assert_opened_at(opened: tuple[Any, Any], doc_id: str, fragment: str) -> None:
    """The tab shows, at `fragment`, what the page fetched: the document's original bytes."""
    tab, (url, response, body) = opened
    assert tab.url.startswith(f"blob:{url.split('/v1/')[0]}/"), tab.url
    assert tab.url.endswith(fragment), tab.url
    assert url.endswith(f"/v1/documents/{doc_id}/original")
    assert response.status == 200 and response.headers["content-type"] == "application/pdf"
    assert hashlib.sha256(body).hexdigest() == doc_id


def test_ask_offline_streams_passages_and_a_citation_opens_its_page(
    offline: Running, page_of: Any, shots: Shots
) -> None:
    page = page_of(offline)
    shots(page, "ask-empty")
    ask(page, "When did Mount Etna erupt?", done="No model was called.")
    notice = page.inner_text("#ask-notice")
    assert notice.startswith("No model was called")
    assert "Nothing was sent to a model" in page.inner_text("#sources")
    answer = page.inner_text("#answer")
    assert "2021" in answer and "[1]" not in answer  # the literal mark became a button
    marks = page.locator("#answer button.cite")
    assert marks.count() >= 1
    etna = page.locator("#answer button.cite[title*='p. 2']").first
    assert "Mount Etna erupted in 2021" in (etna.get_attribute("title") or "")
    opened = open_citation(page, etna, shots, "original-at-page-2")
    detail = page.inner_text("#cite-detail")
    assert "Mount Etna erupted in 2021" in detail and "Open the original at p. 2" in detail
    shots(page, "ask-offline")
    assert_opened_at(opened, ETNA_ID, "#page=2")
    assert page.script_errors == []


def test_search_shows_ranked_documents_with_their_passages(
    offline: Running, page_of: Any, shots: Shots
) -> None:
    page = page_of(offline)
    page.click("#tab-search")
    page.fill("#q", "sourdough starter")
    page.select_option("#mode", "bm25")
    page.click("#search-form button[type=submit]")
    page.wait_for_selector("#results > li")
    first = page.locator("#results > li").first
    assert "bread" in first.locator("h3").inner_text().lower()
    assert "Sourdough bread" in first.locator(".passages").inner_text()
    assert "(bm25," in page.inner_text("#search-status")
    page.fill("#q", "lava fountains")
    page.select_option("#mode", "hybrid")
    page.click("#search-form button[type=submit]")
    page.wait_for_function(
        "() => document.getElementById('search-status').textContent.includes('hybrid')"
    )
    top = page.locator("#results > li").first
    assert "pp. 1–2" in top.locator(".passages").inner_text()  # the chunk spans both pages
    shots(page, "search")
    assert page.script_errors == []


@pytest.fixture
def online(online_settings: Any, embedder: Any) -> Iterator[Running]:
    running = serve(online_settings, embedder)
    try:
        with running.client() as client:
            response = upload(client, {"etna.pdf": ETNA})
            assert response.json()["results"][0]["status"] == "added", response.text
        yield running
    finally:
        running.stop()


def test_ask_through_the_standin_streams_the_answer_and_shows_what_was_sent(
    online: Running, standin: Any, page_of: Any, shots: Shots
) -> None:
    page = page_of(online)
    ask(page, "When did Mount Etna erupt?", done="Answered by Claude.")
    [sent] = standin.requests("POST", "/v1/messages")
    assert sent.json["stream"] is True
    assert "2021" in page.inner_text("#answer")
    assert page.locator("#ask-notice").is_hidden()
    sources = page.inner_text("#sources")
    assert "Sent to Claude" in sources and "1 document, 2 pages" in sources
    assert "estimated cost $" in sources and "pp. 1–2 (2 pages)" in sources
    assert "etna" in sources
    mark = page.locator("#answer button.cite").first
    opened = open_citation(page, mark, shots, "original-from-claude")
    shots(page, "ask-claude")
    assert_opened_at(opened, ETNA_ID, "#page=2")
    assert page.script_errors == []


def test_an_upstream_failure_is_a_sentence(
    online: Running, standin: Any, page_of: Any, shots: Shots
) -> None:
    standin.inject(
        "/v1/messages", status=500, error_type="api_error", times=10, headers={"retry-after": "0"}
    )
    page = page_of(online)
    page.fill("#question", "When did Mount Etna erupt?")
    page.click("#ask-button")
    page.wait_for_selector("#error", state="visible")
    text = page.inner_text("#error-text")
    assert text.startswith("Anthropic could not answer (error 502).")
    assert "{" not in text and "upstream_error" not in text
    shots(page, "upstream-error")
    page.click("#error-close")
    assert page.locator("#error").is_hidden()


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Iterator[Running]:
    """A server with a key and a small upload limit."""
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("web-keyed") / "kbdata",
        api_keys=(API_KEY,),
        max_upload_bytes=UPLOAD_LIMIT,
    )
    running = serve(settings, embedder)
    try:
        yield running
    finally:
        running.stop()


def enter_key(page: Any, key: str) -> None:
    page.fill("#key", key)
    page.press("#key", "Enter")


def test_a_wrong_key_is_told_and_the_right_one_kept_for_the_session(
    keyed: Running, page_of: Any, shots: Shots
) -> None:
    page = page_of(keyed)
    assert page.locator("#key-panel").is_visible()
    assert page.evaluate("sessionStorage.length") == 0
    enter_key(page, "not-the-key")
    page.wait_for_function("() => document.getElementById('key-error').textContent !== ''")
    assert page.inner_text("#key-error") == "That API key was not accepted. Check it and try again."
    assert page.evaluate("sessionStorage.length") == 0
    shots(page, "wrong-key")
    enter_key(page, API_KEY)
    page.wait_for_selector("#key-panel", state="hidden")
    page.click("#tab-documents")
    page.wait_for_function("() => document.getElementById('docs-status').textContent !== ''")
    page.reload()  # the same tab keeps its key
    page.wait_for_selector("body[data-ready=true]", state="attached")
    assert page.locator("#key-panel").is_hidden()
    other = page_of(keyed)  # another session asks again
    assert other.locator("#key-panel").is_visible()
    page.click("#forget-key")
    assert page.locator("#key-panel").is_visible()
    assert page.evaluate("sessionStorage.length") == 0
    assert page.script_errors == []


def write(tmp_path: Path, name: str, data: bytes | str) -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def row_status(page: Any, name: str) -> str:
    row = page.locator("#uploads li", has_text=name)
    row.locator("span.good, span.bad").wait_for()
    return str(row.locator("span.good, span.bad").inner_text())


def test_upload_two_files_list_them_and_delete_one(
    keyed: Running, page_of: Any, shots: Shots, tmp_path: Path
) -> None:
    page = page_of(keyed)
    enter_key(page, API_KEY)
    page.wait_for_selector("#key-panel", state="hidden")
    page.click("#tab-documents")
    files = [
        write(tmp_path, "tides.txt", "Tide tables for the harbour, printed every spring."),
        write(tmp_path, "lighthouse.md", "# Lighthouse\n\nThe lamp is lit at dusk by the keeper."),
    ]
    page.set_input_files("#files", [str(f) for f in files])
    assert row_status(page, "tides.txt").startswith("added")
    assert row_status(page, "lighthouse.md").startswith("added")
    page.wait_for_selector("#doc-list li button.title >> text=Lighthouse")
    titles = page.locator("#doc-list button.title").all_inner_texts()
    assert sorted(titles) == ["Lighthouse", "tides"]
    page.click("#doc-list button.title >> text=Lighthouse")
    detail = page.locator("#doc-detail")
    detail.wait_for()
    assert "Chunks" in detail.inner_text() and "Stored files" in detail.inner_text()
    assert "upload:" in detail.inner_text() and "(local)" in detail.inner_text()
    shots(page, "documents-detail")

    delete = page.locator("#doc-list li", has_text="tides").locator("button.danger")
    delete.click()
    assert "Delete “tides”?" in page.inner_text("#confirm")
    page.click("#confirm button[value=cancel]")  # cancelled: nothing goes
    assert page.locator("#doc-list button.title").count() == 2
    delete.click()
    shots(page, "documents-confirm")
    page.click("#confirm-delete")
    page.wait_for_function(
        "() => document.getElementById('docs-status').textContent.startsWith('Deleted tides.')"
    )
    page.wait_for_function("() => document.querySelectorAll('#doc-list li').length === 1")
    assert page.locator("#doc-list button.title").all_inner_texts() == ["Lighthouse"]
    with keyed.client(key=API_KEY) as client:
        listed = client.get("/v1/documents").json()["documents"]
    assert [d["title"] for d in listed] == ["Lighthouse"]
    page.fill("#name", "light")
    page.click("#filter-form button[type=submit]")
    page.wait_for_function(
        "() => document.getElementById('docs-status').textContent.endsWith('of 1.')"
    )
    shots(page, "documents")
    assert page.script_errors == []


def test_a_file_over_the_limit_is_a_sentence_and_the_others_still_go(
    keyed: Running, page_of: Any, shots: Shots, tmp_path: Path
) -> None:
    page = page_of(keyed)
    enter_key(page, API_KEY)
    page.wait_for_selector("#key-panel", state="hidden")
    page.click("#tab-documents")
    big = write(tmp_path, "big.txt", "harbour " * (UPLOAD_LIMIT // 8 + 100))
    small = write(tmp_path, "buoys.txt", "Red buoys mark the port side of the channel.")
    odd = write(tmp_path, "tool.exe", b"MZ\x90\x00binary")
    page.set_input_files("#files", [str(big), str(small), str(odd)])
    assert row_status(page, "big.txt") == (
        "big.txt is too large for this server: it takes at most 64 KB per upload."
    )
    assert row_status(page, "buoys.txt").startswith("added")
    assert row_status(page, "tool.exe") == (
        "tool.exe is not a kind of file kb reads (PDF, text, Markdown or an image)."
    )
    assert "{" not in page.inner_text("#uploads")
    shots(page, "upload-errors")
    with keyed.client(key=API_KEY) as client:
        titles = [d["title"] for d in client.get("/v1/documents").json()["documents"]]
    assert "buoys" in titles and "big" not in titles


def test_files_dropped_on_the_page_are_uploaded(
    offline: Running, page_of: Any, tmp_path: Path
) -> None:
    page = page_of(offline)
    page.click("#tab-documents")
    dropped = page.evaluate_handle(
        """() => {
          const data = new DataTransfer();
          data.items.add(new File(["Anchors are stowed before sailing."], "anchors.txt",
                                  {type: "text/plain"}));
          return data;
        }"""
    )
    page.dispatch_event("#drop", "drop", {"dataTransfer": dropped})
    assert row_status(page, "anchors.txt").startswith("added")
    with offline.client() as client:
        names = client.get("/v1/documents", params={"name": "anchors"}).json()["documents"]
    assert [d["title"] for d in names] == ["anchors"]


def test_keyboard_only_on_a_phone_sized_screen(
    offline: Running, page_of: Any, shots: Shots
) -> None:
    page = page_of(offline, **PHONE)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shots(page, "phone-ask")
    focused: list[str] = []
    for _ in range(8):  # Tab from the top reaches the tabs, then the question
        page.keyboard.press("Tab")
        focused.append(page.evaluate("document.activeElement.id"))
        if focused[-1] == "question":
            break
    assert focused[:3] == ["tab-ask", "tab-search", "tab-documents"]
    assert focused[-1] == "question"
    page.keyboard.type("When did Mount Etna erupt?")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "ask-button"
    page.keyboard.press("Enter")
    page.wait_for_function(
        "() => document.getElementById('ask-status').textContent === 'No model was called.'",
        timeout=WAIT_MS,
    )
    mark = page.locator("#answer button.cite").first
    mark.focus()
    page.keyboard.press("Enter")
    assert page.locator("#cite-detail").is_visible()
    assert mark.get_attribute("aria-expanded") == "true"
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shots(page, "phone-answer")
    page.keyboard.press("Escape")
    assert page.locator("#cite-detail").is_hidden()
    assert page.evaluate("document.activeElement.classList.contains('cite')")
    for tab in ("search", "documents"):
        page.focus(f"#tab-{tab}")
        page.keyboard.press("Enter")
        page.wait_for_selector(f"#{tab}", state="visible")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        shots(page, f"phone-{tab}")
    page.wait_for_selector("#doc-list li")
    assert page.script_errors == []


def test_the_list_is_paged(offline: Running, page_of: Any) -> None:
    with offline.client() as client:
        notes = {f"note-{n:02d}.txt": f"Harbour note number {n} of the pager." for n in range(21)}
        assert upload(client, notes).status_code == 200
        total = client.get("/v1/documents").json()["total"]
    page = page_of(offline)
    page.click("#tab-documents")
    status = page.locator("#docs-status")
    page.wait_for_function(
        "(n) => document.getElementById('docs-status').textContent === `Documents 1–20 of ${n}.`",
        arg=total,
    )
    assert page.locator("#doc-list li").count() == 20 and page.locator("#prev").is_disabled()
    page.click("#next")
    page.wait_for_function(
        "() => document.getElementById('docs-status').textContent.startsWith('Documents 21–')"
    )
    assert status.inner_text() == f"Documents 21–{total} of {total}."
    assert (
        page.locator("#doc-list li").count() == total - 20 and page.locator("#next").is_disabled()
    )
    page.fill("#name", "note-1")
    page.click("#filter-form button[type=submit]")
    page.wait_for_function("() => document.querySelectorAll('#doc-list li').length === 10")
    assert status.inner_text() == "Documents 1–10 of 10."
    page.select_option("#kind", "pdf")
    page.click("#filter-form button[type=submit]")
    page.wait_for_function(
        "() => document.getElementById('docs-status').textContent === 'No documents.'"
    )

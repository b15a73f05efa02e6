"""The page with a key that has a knowledge base of its own: it lists, searches and asks in
that one only, because it goes through the same `/v1` routes with the key."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from kb.settings import Settings
from tests.api.conftest import Running, serve, upload
from tests.web.conftest import Shots, missing_browser

if (why := missing_browser()) is not None:
    pytest.skip(why, allow_module_level=True)

FINANCE, SUPPORT = "key-finance", "key-support"
FILES = {
    FINANCE: {"ledger.md": "# Ledger\n\nThe quarterly dividend of 42 cents was paid in March."},
    SUPPORT: {"tickets.md": "# Tickets\n\nPrinter jams on the third floor are fixed by Dana."},
}


@pytest.fixture(scope="module")
def tenants(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Iterator[Running]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("web-tenants") / "kbdata",
        api_keys=(f"{FINANCE}=finance", f"{SUPPORT}=support"),
    )
    running = serve(settings, embedder)
    try:
        for key, files in FILES.items():
            with running.client(key=key) as client:
                assert upload(client, files).status_code == 200
        yield running
    finally:
        running.stop()


def test_each_key_sees_its_own_knowledge_base_in_the_page(
    tenants: Running, page_of: Any, shots: Shots
) -> None:
    for key, title in ((FINANCE, "Ledger"), (SUPPORT, "Tickets")):
        page = page_of(tenants)
        page.fill("#key", key)
        page.press("#key", "Enter")
        page.wait_for_selector("#key-panel", state="hidden")
        page.click("#tab-documents")
        page.wait_for_selector(f"#doc-list li button.title >> text={title}")
        assert page.locator("#doc-list button.title").all_inner_texts() == [title]
        shots(page, f"documents-{title.lower()}")
        assert page.script_errors == []

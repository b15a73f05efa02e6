"""Headless Chromium driven by Playwright against the real app over HTTP.

The browser is Debian's `chromium` (Playwright's own browser download cannot work here),
launched by path. When it is missing the module is skipped as one line that says why and how
to install it (`missing_browser`, checked at collection), never silently; a browser that is
there but cannot start skips each test with that reason. Each test saves screenshots of
what it saw under `artifacts/screenshots/` (ignored by git), kept as the run's artifacts.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kb.settings import Settings
from standin.pdfs import pdf_bytes
from tests.api.conftest import CORPUS, Running, serve, upload

SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
CHROMIUM = os.environ.get("KB_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
WAIT_MS = 60_000  # a shared, busy machine: the model answers in seconds, not milliseconds
ETNA = pdf_bytes(
    [
        "An introduction to volcanoes of the world.",
        "Mount Etna erupted in 2021 with lava fountains.",
    ]
)


INSTALL = "install it with `apt-get install chromium` (make test does, as root)"


def missing_browser() -> str | None:
    """Why the browser tests cannot run here, or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "browser tests skipped: playwright is not installed (pip install -e '.[dev]')"
    if not os.access(CHROMIUM, os.X_OK):
        return f"browser tests skipped: no Chromium at {CHROMIUM}; {INSTALL}"
    return None


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("browser tests skipped: playwright is not installed (pip install -e '.[dev]')")
    playwright = sync_playwright().start()
    try:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
    except Exception as exc:
        playwright.stop()
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        pytest.skip(
            f"browser tests skipped: Chromium could not be started from {CHROMIUM} ({first}); "
            + INSTALL
        )
    try:
        yield launched
    finally:
        launched.close()
        playwright.stop()


@pytest.fixture(autouse=True)
def _needs_browser(browser: Any) -> None:
    """Asked for first, so that without a browser no test here starts a server."""


class Shots:
    """Saves full-page screenshots as `<test name>-<name>.png`."""

    def __init__(self, test: str) -> None:
        self.prefix = re.sub(r"[^A-Za-z0-9_-]+", "-", test).strip("-")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def __call__(self, page: Any, name: str) -> Path:
        path = SCREENSHOTS / f"{self.prefix}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def shots(request: pytest.FixtureRequest) -> Shots:
    return Shots(request.node.name)


def open_page(browser: Any, base_url: str, **context: Any) -> Any:
    """A fresh browser session (its own sessionStorage) on the page, once it has started."""
    page = browser.new_context(**context).new_page()
    page.set_default_timeout(WAIT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: errors.append(m.text) if _is_script_error(m) else None)
    page.script_errors = errors
    page.goto(f"{base_url}/")
    page.wait_for_selector("body[data-ready=true]", state="attached")
    return page


def _is_script_error(message: Any) -> bool:
    """An error the page's script or its policy caused (a refused script or style among
    them); a 4xx answer the page expected and handled is not one."""
    return message.type == "error" and not message.text.startswith("Failed to load resource")


@pytest.fixture
def page_of(browser: Any) -> Iterator[Any]:
    """`page_of(running, **context)` opens the page on a server; contexts close afterwards."""
    opened: list[Any] = []

    def make(running: Running, **context: Any) -> Any:
        page = open_page(browser, running.base_url, **context)
        opened.append(page)
        return page

    yield make
    for page in opened:
        page.context.close()


@pytest.fixture(scope="module")
def offline(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Iterator[Running]:
    """An offline server without keys: the small corpus and a two-page PDF about Etna."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("web") / "kbdata")
    running = serve(settings, embedder)
    try:
        with running.client() as client:
            response = upload(client, {**CORPUS, "etna.pdf": ETNA})
            assert response.status_code == 200, response.text
        yield running
    finally:
        running.stop()

"""Pytest plugin: the Anthropic stand-in on loopback, and settings pointing kb at it.

`standin` runs `StandIn` under uvicorn on 127.0.0.1 and a free port in a background thread.
It exposes `base_url`, `state`, `log` (the request log), `inject(path, ...)` for faults,
`requests(method, path)` to filter the log, and `reset()`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from standin.server import StandIn, serve
from standin.store import Fault, LoggedRequest, State


class RunningStandIn:
    def __init__(self, app: StandIn, base_url: str) -> None:
        self.app = app
        self.base_url = base_url

    @property
    def state(self) -> State:
        return self.app.state

    @property
    def log(self) -> list[LoggedRequest]:
        return self.app.state.log

    def inject(self, path: str, *, method: str = "POST", **kwargs: Any) -> Fault:
        """Fail the next matching request(s): kind status|drop|after_status|after_drop."""
        fault = Fault(path, method=method, **kwargs)
        self.state.faults.append(fault)
        return fault

    def requests(self, method: str, path: str) -> list[LoggedRequest]:
        return [r for r in self.log if r.method == method and r.path == path]

    def reset(self) -> None:
        self.state.reset()
        self.app.api_keys = None


@pytest.fixture
def standin() -> Iterator[RunningStandIn]:
    app = StandIn()
    server, thread, base_url = serve(app)
    try:
        yield RunningStandIn(app, base_url)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def online_settings(settings: Any, standin: RunningStandIn) -> Any:
    return settings.replace(anthropic_api_key="sk-test", anthropic_base_url=standin.base_url)


@pytest.fixture
def online_cli(online_settings: Any, embedder: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """`kb` commands run in this process (`kb.cli.main`) open the knowledge base of
    `online_settings`, on the stand-in, with the session's model."""
    from kb.service import open_kb

    monkeypatch.setattr(
        "kb.cli.open_kb_from_env",
        lambda kb_name=None: open_kb(
            online_settings.for_kb(kb_name or online_settings.kb_name), embedder=embedder
        ),
    )

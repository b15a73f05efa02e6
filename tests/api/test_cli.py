"""`kb serve` as a real process: it prints the URL and a curl line that works."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import httpx

from standin.loopback import free_port, wait_for_http

ROOT = Path(__file__).resolve().parents[2]


def test_kb_serve_starts_and_prints_a_working_curl(tmp_path: Path) -> None:
    port = free_port()
    env = dict(os.environ, KB_DATA_DIR=str(tmp_path / "kbdata"), HF_HUB_OFFLINE="1")
    env.pop("KB_API_KEYS", None)
    env.pop("ANTHROPIC_API_KEY", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "kb.cli", "serve", "--port", str(port), "--log-level", "warning"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url_line = proc.stdout.readline()
        curl_line = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}" in url_line
        assert "curl" in curl_line
        wait_for_http(f"http://127.0.0.1:{port}/ready", proc, timeout=120)
        command = shlex.split(curl_line.split("try:", 1)[1])
        url = next(part for part in command if part.startswith("http"))
        response = httpx.get(url, timeout=30)
        assert response.status_code == 200
        assert response.json()["results"] == []
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_kb_serve_rejects_a_busy_or_impossible_port_before_loading_anything(
    tmp_path: Path, monkeypatch, capsys
) -> None:  # type: ignore[no-untyped-def]
    import socket

    import pytest

    from api.cli import bind_problem
    from kb.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KB_API_KEYS", raising=False)
    monkeypatch.setattr("uvicorn.run", lambda *a, **k: pytest.fail("must not start uvicorn"))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert "in use" in (bind_problem("127.0.0.1", port) or "")
        assert main(["serve", "--port", str(port)]) == 1
        assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err
    assert main(["serve", "--port", "99999"]) == 2
    assert "out of range" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["serve", "--log-level", "loud"])
    assert exc.value.code == 2


def test_kb_serve_names_the_knowledge_bases_its_keys_reach(
    tmp_path: Path, monkeypatch, capsys
) -> None:  # type: ignore[no-untyped-def]
    from kb.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KB_API_KEYS", "k1=finance,k2=support,k3=finance,k4")
    monkeypatch.setattr("uvicorn.run", lambda *a, **k: None)
    assert main(["serve", "--port", str(free_port())]) == 0
    out = capsys.readouterr().out
    assert "knowledge bases by key: default (1 key), finance (2 keys), support (1 key)" in out
    assert "k1" not in out

"""A bulk-question job survives its kb: killed with SIGKILL while its batch runs (a real `kb`
child process), or losing the answer to the batch's creation, the next run takes up the same
batch, and Anthropic sees one batch, not two."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from ingest import ingest_paths
from kb.batch_jobs import parse_questions
from kb.cli import main
from kb.errors import UpstreamRejected
from kb.service import check_question, open_kb
from standin.pdfs import make_pdf
from tests.processes import kb_env

BATCHES = "/v1/messages/batches"
QUESTIONS = (
    '{"id": "a", "question": "When should tomatoes be watered?"}\n'
    '{"id": "b", "question": "When is the beacon lit?"}\n'
    '{"id": "c", "question": "What is checked every spring?"}\n'
)


def _corpus(settings: Any, embedder: Any, root: Path) -> None:
    make_pdf(root / "garden.pdf", ["Water the tomatoes at dawn, never at noon."])
    make_pdf(root / "lighthouse.pdf", ["Lighthouse log.", "The beacon is lit at dusk."])
    make_pdf(root / "boat.pdf", ["Check the bilge pump every spring."])
    with open_kb(settings, embedder=embedder) as kb:
        ingest_paths(kb, [root])


def _wait(condition: Any, proc: subprocess.Popen[bytes], what: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(f"kb ended ({proc.returncode}) before {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"kb did not reach {what} in {timeout} s")
        time.sleep(0.05)


def test_kill_9_while_the_batch_runs_then_the_same_command_takes_it_up(
    online_settings: Any,
    embedder: Any,
    standin: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _corpus(online_settings, embedder, tmp_path / "docs")
    questions, out = tmp_path / "questions.jsonl", tmp_path / "answers.jsonl"
    questions.write_text(QUESTIONS)
    standin.state.batch_hold = True  # the batch runs until the kill
    env = kb_env(
        online_settings,
        ANTHROPIC_API_KEY="sk-test",
        ANTHROPIC_BASE_URL=standin.base_url,
        KB_BATCH_POLL_SECONDS="0.05",
        TOKENIZERS_PARALLELISM="false",
    )
    command = [sys.executable, "-m", "kb.cli", "ask", "--batch", str(questions)]
    proc = subprocess.Popen(
        [*command, "--out", str(out)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        # killed once the batch exists and kb is waiting on it (its id is saved by then)
        _wait(
            lambda: any(
                r.method == "GET" and r.path.startswith(BATCHES + "/") for r in standin.log
            ),
            proc,
            "polling its batch",
        )
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert len(standin.state.batches) == 1 and not out.read_text()
    standin.state.batch_hold = False

    settings = online_settings.replace(batch_poll_seconds=0.01)
    monkeypatch.setattr(
        "kb.cli.open_kb_from_env", lambda kb_name=None: open_kb(settings, embedder=embedder)
    )
    monkeypatch.chdir(tmp_path)
    assert main([*command[3:], "--out", str(out)]) == 0
    assert len(standin.requests("POST", BATCHES)) == 1  # the same batch, taken up
    answers = {a["id"]: a for a in map(json.loads, out.read_text().splitlines())}
    assert sorted(answers) == ["a", "b", "c"]
    assert all(a["error"] is None for a in answers.values())
    assert "dusk" in answers["b"]["answer"] and answers["b"]["citations"][0]["page_start"] == 2


def test_a_batch_whose_creation_answer_was_lost_is_found_not_sent_again(
    online_settings: Any, embedder: Any, standin: Any, tmp_path: Path
) -> None:
    _corpus(online_settings, embedder, tmp_path / "docs")
    settings = online_settings.replace(batch_poll_seconds=0.01)
    with open_kb(settings, embedder=embedder) as kb:
        questions = parse_questions(
            QUESTIONS.splitlines(), lambda t, f: check_question(t, settings, f)
        )
        # the batch is created, then the connection drops before kb hears its id
        standin.inject(BATCHES, kind="after_drop")
        job = kb.bulk().run(questions)
        assert len(standin.state.batches) == 1 and len(job.batches) == 1
        assert job.batches[0].id in standin.state.batches
        assert len(standin.requests("POST", BATCHES)) == 1  # no retry by the SDK either
        assert len(list(kb.bulk().store.answers(job.id))) == 3
        # a refused create leaves no record behind and says why
        standin.inject(BATCHES, kind="status", status=400)
        other = parse_questions(["Is the beacon lit at dusk?"], lambda t, f: t)
        with pytest.raises(UpstreamRejected):
            kb.bulk().start(other)
        (refused,) = [j for j in kb.bulk().store.jobs() if j.id != job.id]
        assert refused.batches == [] and list(refused.requests) == ["q1-a1"]

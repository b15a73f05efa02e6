"""kb and the LlamaIndex peer ingest, back to back on one corpus, with the ratios.

    python bench/vs_llamaindex.py CORPUS_DIR --peer-python PEER/venv/bin/python
        [--backend onnx] [--peer ../shared/peer/llamaindex_ingest.py] [--files-per-run 1]

Runs `bench/ingest.py` (kb: first run, unchanged re-run, the model alone on the same texts)
and then the peer (`../shared/peer/`, its README says how to set up its venv) on the same
corpus, each in its own process, and prints both side by side: wall time, pages/s, chunks/s,
the ratio to each one's own embedding floor, the re-run as a share of the first run, peak RSS,
and kb's pages/s over the peer's (target >= 2). Figures from one run on one machine compare;
figures from runs at other times do not (the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PEER = ROOT.parent / "shared" / "peer" / "llamaindex_ingest.py"


def run(command: list[str], out: Path) -> dict[str, object]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    sys.stdout.write(done.stdout.decode(errors="replace"))
    if done.returncode != 0 or not out.is_file():
        sys.exit(f"{command[1]} failed (exit {done.returncode})")
    figures: dict[str, object] = json.loads(out.read_text())
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--peer-python", required=True, help="the peer venv's python")
    parser.add_argument("--peer", type=Path, default=PEER)
    parser.add_argument("--backend", choices=("torch", "onnx", "onnx-int8"), help="queries")
    parser.add_argument(
        "--ingest-backend", choices=("auto", "torch", "torch-bf16", "onnx", "onnx-int8")
    )
    parser.add_argument("--files-per-run", type=int, default=1, help="passed to the peer")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        kb_out, peer_out = Path(tmp) / "kb.json", Path(tmp) / "peer.json"
        command = [sys.executable, str(ROOT / "bench" / "ingest.py"), str(args.corpus)]
        command += ["--json", str(kb_out)] + (["--backend", args.backend] if args.backend else [])
        if args.ingest_backend:
            command += ["--ingest-backend", args.ingest_backend]
        print(f"== kb ({args.ingest_backend or 'default'} ingest backend)", flush=True)
        kb = run(command, kb_out)
        print("== LlamaIndex peer", flush=True)
        peer = run(
            [
                args.peer_python,
                str(args.peer),
                str(args.corpus),
                "--files-per-run",
                str(args.files_per_run),
                "--json",
                str(peer_out),
            ],
            peer_out,
        )

    first = peer["first_run"]
    assert isinstance(first, dict)
    rerun = peer.get("rerun") or {}
    assert isinstance(rerun, dict)
    rows = [
        ("", "kb", "LlamaIndex"),
        ("backend", kb["backend"], "torch (sentence-transformers)"),
        ("pages", kb["pages"], peer["pages"]),
        ("chunks", kb["chunks"], peer["nodes"]),
        ("first run s", kb["seconds"], first["total"]),
        ("pages/s", kb["pages_per_s"], _get(peer, "throughput_first_run", "pages_per_s")),
        ("chunks/s", kb["chunks_per_s"], _get(peer, "throughput_first_run", "nodes_per_s")),
        ("model alone on the same texts s", kb["embed_floor_s"], peer.get("embed_floor_s")),
        ("first run / model alone", kb["ratio_to_floor"], peer.get("ratio_total_to_floor")),
        ("unchanged re-run / first run", kb["rerun_fraction"], rerun.get("fraction_of_first")),
        ("peak RSS MB", kb["peak_rss_mb"], peer["peak_rss_mb"]),
    ]
    width = max(len(str(r[0])) for r in rows)
    for name, ours, theirs in rows:
        print(f"{name:<{width}}  {ours!s:>12}  {theirs!s:>12}")
    ratio = float(kb["pages_per_s"]) / float(_get(peer, "throughput_first_run", "pages_per_s"))  # type: ignore[arg-type]
    print(f"kb pages/s over LlamaIndex pages/s: {ratio:.2f} (target >= 2, same run)")


def _get(figures: dict[str, object], *keys: str) -> object:
    value: object = figures
    for key in keys:
        assert isinstance(value, dict)
        value = value[key]
    return value


if __name__ == "__main__":
    main()

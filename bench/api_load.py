"""Load test of `GET /v1/search` on a loopback server.

Generates a corpus of a few thousand chunks, ingests it, measures the in-process retrieval
time of the queries (`Retriever.search`, same concurrency), then starts `kb serve` in a child
process and runs a fixed number of concurrent HTTP clients for a fixed time. Prints
requests/s, p50/p95/p99 latency and the ratio of HTTP p50 to in-process p50 (target <= 1.3).

    .venv/bin/python bench/api_load.py --docs 200 --clients 4 --seconds 20
    KB_EMBED_BACKEND=torch .venv/bin/python bench/api_load.py --data-dir DIR   # another backend
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

_VOCABULARY = (
    "river mountain glacier harbour market castle forest desert island valley bridge "
    "tower engine signal orbit comet garden library theatre canal meadow quarry lantern "
    "compass volcano ember copper silver marble granite harvest winter summer autumn "
    "spring storm thunder falcon heron otter badger lynx walrus beacon anchor sail "
    "rudder keel mast"
)
WORDS = _VOCABULARY.split()


def make_corpus(root: Path, docs: int, words: int, seed: int = 11) -> list[Path]:
    rng = random.Random(seed)
    paths = []
    for i in range(docs):
        path = root / f"doc-{i:04d}.txt"
        text = " ".join(rng.choice(WORDS) for _ in range(words))
        path.write_text(f"Document {i}. {text}\n", encoding="utf-8")
        paths.append(path)
    return paths


def make_queries(n: int, seed: int = 5) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.sample(WORDS, 3)) for _ in range(n)]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def in_process(
    kb: object, queries: list[str], clients: int, seconds: float, k: int, mode: str
) -> list[float]:
    """Latencies (ms) of `Retriever.search` called by `clients` threads for `seconds`."""
    latencies: list[float] = []
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def worker(offset: int) -> None:
        i = offset
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            kb.retriever.search(queries[i % len(queries)], k=k, mode=mode)  # type: ignore[attr-defined]
            with lock:
                latencies.append((time.perf_counter() - started) * 1000)
            i += clients

    threads = [threading.Thread(target=worker, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies


async def over_http(
    base_url: str, queries: list[str], clients: int, seconds: float, k: int, mode: str
) -> tuple[list[float], int]:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as client:

        async def worker(offset: int) -> None:
            nonlocal errors
            i = offset
            while time.perf_counter() < deadline:
                params: dict[str, str | int] = {
                    "q": queries[i % len(queries)],
                    "k": k,
                    "mode": mode,
                }
                started = time.perf_counter()
                response = await client.get("/v1/search", params=params)
                elapsed = (time.perf_counter() - started) * 1000
                if response.status_code == 200:
                    latencies.append(elapsed)
                else:
                    errors += 1
                i += clients

        await asyncio.gather(*(worker(c) for c in range(clients)))
    return latencies, errors


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    env = dict(os.environ, KB_DATA_DIR=str(data_dir), HF_HUB_OFFLINE="1")
    for name in ("KB_API_KEYS", "ANTHROPIC_API_KEY"):
        env.pop(name, None)
    command = [
        sys.executable,
        "-m",
        "kb.cli",
        "serve",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    proc = subprocess.Popen(command, env=env, cwd=data_dir.parent, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        if proc.poll() is not None:
            raise SystemExit("kb serve exited before it was ready")
        time.sleep(0.5)
    proc.terminate()
    raise SystemExit("kb serve did not become ready")


def report(name: str, latencies: list[float], seconds: float) -> None:
    print(
        f"{name:<12} requests={len(latencies):>6}  req/s={len(latencies) / seconds:8.1f}  "
        f"p50={percentile(latencies, 50):7.1f}ms  p95={percentile(latencies, 95):7.1f}ms  "
        f"p99={percentile(latencies, 99):7.1f}ms"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=200, help="documents to generate")
    parser.add_argument("--words", type=int, default=1500, help="words per document")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--mode", default="hybrid", choices=("dense", "bm25", "hybrid"))
    parser.add_argument("--data-dir", type=Path, default=None, help="reuse an ingested corpus")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    here = Path(__file__).resolve().parent  # bench/ingest.py would shadow the ingest package
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]

    from ingest import ingest_paths
    from kb.service import open_kb
    from kb.settings import Settings

    work = Path(tempfile.mkdtemp(prefix="kb-bench-"))
    data_dir = args.data_dir or work / "kbdata"
    settings = Settings.from_env().replace(data_dir=data_dir)  # KB_EMBED_BACKEND, ...
    kb = open_kb(settings)
    if kb.index.count() == 0:
        corpus = work / "corpus"
        corpus.mkdir()
        started = time.perf_counter()
        ingest_paths(kb, make_corpus(corpus, args.docs, args.words))
        print(f"ingested {args.docs} documents in {time.perf_counter() - started:.1f}s")
    chunks = kb.index.chunk_count()
    print(f"corpus: {kb.index.count()} documents, {chunks} chunks; data dir {data_dir}")
    queries = make_queries(200)
    in_process(kb, queries[:10], 1, 2.0, args.k, args.mode)  # warm up (BM25 snapshot, caches)

    local = in_process(kb, queries, args.clients, args.seconds, args.k, args.mode)
    del kb
    port = free_port()
    server = start_server(data_dir, port)
    try:
        base_url = f"http://127.0.0.1:{port}"
        asyncio.run(over_http(base_url, queries[:10], 1, 2.0, args.k, args.mode))  # warm up
        remote, errors = asyncio.run(
            over_http(base_url, queries, args.clients, args.seconds, args.k, args.mode)
        )
    finally:
        server.terminate()
        server.wait(timeout=30)

    print(f"\n/v1/search mode={args.mode} k={args.k}, {args.clients} clients, {args.seconds:.0f}s")
    report("in-process", local, args.seconds)
    report("http", remote, args.seconds)
    ratio = statistics.median(remote) / statistics.median(local)
    print(f"errors: {errors}")
    print(f"p50 ratio http/in-process: {ratio:.2f} (target <= 1.3)")
    return 0 if ratio <= 1.3 and errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

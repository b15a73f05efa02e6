"""Evaluation datasets: the BEIR layout, or a folder of the user's own files.

BEIR layout (`corpus.jsonl` present):
    corpus.jsonl   {"_id", "title", "text"} per line
    queries.jsonl  {"_id", "text"} per line (`queries_<split>.jsonl` wins when present)
    qrels          TSV with a header row `query-id corpus-id score`, for split S the first of
                   `qrels/S.tsv`, `qrels_S.tsv`, and (test split only) `qrels.tsv`

Own files (no `corpus.jsonl`): the documents are the files under `DIR/corpus/`, and a corpus id
is a file's path relative to that folder (`reports/q3.pdf`); queries and qrels as above.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from kb.errors import InvalidInput

CORPUS_FILE = "corpus.jsonl"
FILES_DIR = "corpus"


@dataclass(frozen=True, slots=True)
class Dataset:
    name: str
    root: Path
    split: str
    queries: dict[str, str]  # only the queries that have qrels for the split
    qrels: dict[str, dict[str, int]]

    @property
    def is_beir(self) -> bool:
        return (self.root / CORPUS_FILE).is_file()

    @property
    def files_dir(self) -> Path:
        return self.root / FILES_DIR

    def corpus_hash(self) -> str:
        """sha256 over the dataset's resolved path and its corpus content."""
        digest = hashlib.sha256(str(self.root).encode())
        if self.is_beir:
            _hash_file(digest, self.root / CORPUS_FILE)
        else:
            for path in sorted(p for p in self.files_dir.rglob("*") if p.is_file()):
                digest.update(path.relative_to(self.files_dir).as_posix().encode() + b"\0")
                _hash_file(digest, path)
        return digest.hexdigest()


def load_dataset(path: str | Path, split: str = "test") -> Dataset:
    root = Path(path).expanduser().resolve()
    if not root.is_dir():
        raise InvalidInput(f"dataset folder not found: {path}")
    if not (root / CORPUS_FILE).is_file() and not (root / FILES_DIR).is_dir():
        raise InvalidInput(
            f"{root} has neither {CORPUS_FILE} (BEIR layout) nor a {FILES_DIR}/ folder of files"
        )
    qrels = read_qrels(_qrels_path(root, split))
    queries_path = root / f"queries_{split}.jsonl"
    if not queries_path.is_file():
        queries_path = root / "queries.jsonl"
    if not queries_path.is_file():
        raise InvalidInput(f"no queries file in {root} (queries.jsonl or queries_{split}.jsonl)")
    all_queries = {rec["_id"]: str(rec["text"]) for rec in _jsonl(queries_path, ("_id", "text"))}
    missing = [q for q in qrels if q not in all_queries]
    if missing:
        raise InvalidInput(
            f"{len(missing)} query ids in the qrels are not in {queries_path.name}, "
            f"e.g. {missing[0]!r}"
        )
    queries = {qid: all_queries[qid] for qid in qrels}
    return Dataset(root.name, root, split, queries, qrels)


@dataclass(frozen=True, slots=True)
class CorpusRecord:
    id: str
    title: str
    text: str


def iter_corpus(dataset: Dataset) -> Iterator[CorpusRecord]:
    for rec in _jsonl(dataset.root / CORPUS_FILE, ("_id",)):
        yield CorpusRecord(str(rec["_id"]), str(rec.get("title") or ""), str(rec.get("text") or ""))


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        rows = csv.reader(handle, delimiter="\t")
        header = next(rows, None)
        if header is None or [h.strip() for h in header[:2]] != ["query-id", "corpus-id"]:
            raise InvalidInput(f"{path.name}: the first row must be `query-id corpus-id score`")
        for n, row in enumerate(rows, start=2):
            if not row or not "".join(row).strip():
                continue
            if len(row) < 3:
                raise InvalidInput(f"{path.name}:{n}: expected 3 tab-separated columns")
            try:
                grade = int(float(row[2]))
            except ValueError:
                raise InvalidInput(f"{path.name}:{n}: score {row[2]!r} is not a number") from None
            qrels.setdefault(row[0].strip(), {})[row[1].strip()] = grade
    if not qrels:
        raise InvalidInput(f"{path.name} has no judgements")
    return qrels


def _qrels_path(root: Path, split: str) -> Path:
    candidates = [root / "qrels" / f"{split}.tsv", root / f"qrels_{split}.tsv"]
    if split == "test":
        candidates.append(root / "qrels.tsv")
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    names = ", ".join(str(c.relative_to(root)) for c in candidates)
    raise InvalidInput(f"no qrels for split {split!r} in {root} (looked for {names})")


def _jsonl(path: Path, required: tuple[str, ...]) -> Iterator[dict[str, object]]:
    with path.open(encoding="utf-8") as handle:
        for n, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InvalidInput(f"{path.name}:{n}: not JSON ({exc.msg})") from None
            if not isinstance(rec, dict) or any(key not in rec for key in required):
                raise InvalidInput(f"{path.name}:{n}: needs the keys {', '.join(required)}")
            rec["_id"] = str(rec["_id"])
            yield rec


def _hash_file(digest: hashlib._Hash, path: Path) -> None:
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)

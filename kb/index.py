"""The Chroma index: a `chunks` and a `documents` collection per knowledge base.

All index state lives in Chroma, so a Chroma server can share one knowledge base between many
API replicas and ingest workers. The document record is the commit point: chunks written
without a committed record are invisible to search and are replaced by the next ingest.
Writes go in batches within the client's `get_max_batch_size()`.

Each knowledge base has an identity of its own, a random id written into its documents
collection the first time it is opened (by this version: earlier knowledge bases get theirs
then) and read back, so that every process opening it agrees. Stored file names carry it
(`kb.files.remote_filename`): installs that share an Anthropic workspace and a name never
touch each other's files.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from kb.errors import ConfigError, ModelMismatch, Unavailable
from kb.files import KB_ID
from kb.types import Chunk, ChunkHit, Document, Part, RemoteFile

if TYPE_CHECKING:
    import numpy as np

    from kb.embedding import Embedder
    from kb.settings import Settings

_GENERATION_ID = "__generation__"
_IDENTITY_ID = "__identity__"
_RECORD = "document"
_ONE = [1.0]  # the documents collection holds records, not vectors; Chroma wants one anyway
_WRITTEN: set[str] = set()  # generations this process committed: its own index is current


def new_kb_id() -> str:
    """A fresh knowledge-base identity: 16 hex digits (64 random bits)."""
    return secrets.token_hex(8)


def connect(settings: Settings) -> Any:
    """An embedded PersistentClient, or an HttpClient when `chroma_url` is set."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if not settings.chroma_url:
        settings.chroma_dir.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(settings.chroma_dir), settings=chroma_settings)
    url = urlparse(settings.chroma_url)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise ConfigError(f"KB_CHROMA_URL={settings.chroma_url!r} is not an http(s) URL")
    try:
        return chromadb.HttpClient(
            host=url.hostname,
            port=url.port or (443 if url.scheme == "https" else 8000),
            ssl=url.scheme == "https",
            settings=chroma_settings,
        )
    except Exception as exc:
        raise Unavailable(f"cannot reach Chroma at {settings.chroma_url}: {exc}") from exc


class Index:
    def __init__(
        self,
        client: Any,
        kb_name: str,
        model: str,
        dimension: int,
        reopen: Callable[[], Any] | None = None,
    ) -> None:
        self.client = client
        self.kb_name = kb_name
        self.model = model
        self.dimension = dimension
        self.batch_size = int(client.get_max_batch_size())
        self._reopen = reopen  # embedded Chroma: how to open a fresh client on the same path
        self._lock = threading.Lock()
        self._open_collections()
        self._seen = self.generation()

    def _open_collections(self) -> None:
        self._chunks = self.client.get_or_create_collection(
            f"{self.kb_name}_chunks",
            metadata={
                "hnsw:space": "cosine",
                "hnsw:construction_ef": 200,
                "hnsw:search_ef": 200,
                "kb_model": self.model,
                "kb_dim": self.dimension,
            },
            embedding_function=None,
        )
        stored = self._chunks.metadata or {}
        if stored.get("kb_model") != self.model or stored.get("kb_dim") != self.dimension:
            raise ModelMismatch(
                f"knowledge base {self.kb_name!r} was built with {stored.get('kb_model')!r} "
                f"(dimension {stored.get('kb_dim')}), not {self.model!r} "
                f"(dimension {self.dimension})",
                hint="set KB_EMBEDDING_MODEL back, or use another KB_KB_NAME",
            )
        self._docs = self.client.get_or_create_collection(
            f"{self.kb_name}_documents", metadata={"kb_model": self.model}, embedding_function=None
        )
        self.kb_id = self._identity()

    def _identity(self) -> str:
        """This knowledge base's identity, created the first time it is opened. Chroma keeps
        the first record written under an id and ignores a later `add` of the same id, so when
        two processes create it at once, both read back the one that was stored first."""
        stored = self._stored_identity()
        if stored is None:
            # A Chroma that refuses a duplicate id instead: another process was first.
            with contextlib.suppress(Exception):
                self._docs.add(
                    ids=[_IDENTITY_ID],
                    embeddings=[_ONE],
                    documents=[""],
                    metadatas=[{"type": "identity", "value": new_kb_id()}],
                )
            stored = self._stored_identity()
        if stored is None:
            raise Unavailable(f"could not store knowledge base {self.kb_name!r}'s identity")
        if not KB_ID.fullmatch(stored):
            raise ConfigError(
                f"knowledge base {self.kb_name!r} has a malformed identity {stored!r} in Chroma"
            )
        return stored

    def _stored_identity(self) -> str | None:
        got = self._docs.get(ids=[_IDENTITY_ID], include=["metadatas"])
        return str(got["metadatas"][0]["value"]) if got["ids"] else None

    @classmethod
    def open(cls, settings: Settings, embedder: Embedder) -> Index:
        reopen = None if settings.chroma_url else partial(connect, settings)
        return cls(connect(settings), settings.kb_name, embedder.name, embedder.dimension, reopen)

    def refresh(self) -> None:
        """Embedded Chroma keeps the vector index in each process's memory: when another
        process (an ingest beside a running API, another API worker) has committed since, open
        a fresh client, which reads its writes. A Chroma server is always current."""
        if self._reopen is None:
            return
        generation = self.generation()
        if generation == self._seen or generation in _WRITTEN:
            self._seen = generation
            return
        with self._lock:
            if generation == self._seen:
                return
            self.client.close()
            self.client = self._reopen()
            self._open_collections()
            self._seen = generation

    def close(self) -> None:
        self.client.close()

    def ping(self) -> None:
        try:
            self.client.heartbeat()
        except Exception as exc:
            raise Unavailable(f"Chroma is not reachable: {exc}") from exc

    # -- chunks ---------------------------------------------------------------------------

    def add_chunks(self, chunks: Sequence[Chunk], embeddings: np.ndarray) -> None:
        for start in range(0, len(chunks), self.batch_size):
            batch = chunks[start : start + self.batch_size]
            self._chunks.upsert(
                ids=[c.id for c in batch],
                embeddings=embeddings[start : start + len(batch)],
                documents=[c.text for c in batch],
                metadatas=[_chunk_meta(c) for c in batch],
            )

    def delete_chunks(self, doc_id: str) -> None:
        self.delete_chunks_of([doc_id])

    def delete_chunks_of(self, doc_ids: Sequence[str]) -> None:
        for start in range(0, len(doc_ids), 500):
            self._chunks.delete(where={"doc_id": {"$in": list(doc_ids[start : start + 500])}})

    def chunks(self, doc_id: str) -> list[Chunk]:
        got = self._chunks.get(where={"doc_id": doc_id}, include=["documents", "metadatas"])
        found = [_chunk(t, m) for t, m in zip(got["documents"], got["metadatas"], strict=True)]
        return sorted(found, key=lambda c: (c.part, c.n))

    def iter_chunks(self, batch_size: int = 1000) -> Iterator[Chunk]:
        """Every chunk of a committed document."""
        committed = {d.id for d in self.documents()}
        offset = 0
        while True:
            got = self._chunks.get(
                include=["documents", "metadatas"], limit=batch_size, offset=offset
            )
            if not got["ids"]:
                return
            for text, meta in zip(got["documents"], got["metadatas"], strict=True):
                if meta["doc_id"] in committed:
                    yield _chunk(text, meta)
            offset += len(got["ids"])

    def query(self, embedding: np.ndarray, k: int, *, doc_id: str | None = None) -> list[ChunkHit]:
        """The `k` nearest chunks of committed documents (of one, with `doc_id`), cosine
        similarity as score."""
        self.refresh()
        chunks = self._chunks
        if chunks.count() == 0:
            return []
        request: dict[str, Any] = {
            "query_embeddings": [embedding],
            "n_results": k,
            "include": ["documents", "metadatas", "distances"],
        }
        if doc_id is not None:
            request["where"] = {"doc_id": doc_id}
        try:
            got = chunks.query(**request)
        except Exception:
            if chunks is self._chunks:
                raise
            got = self._chunks.query(**request)  # the client was reopened meanwhile
        rows = zip(got["documents"][0], got["metadatas"][0], got["distances"][0], strict=True)
        hits = [ChunkHit(_chunk(text, meta), 1.0 - float(dist)) for text, meta, dist in rows]
        committed = self.get_many({h.chunk.doc_id for h in hits})
        return [h for h in hits if h.chunk.doc_id in committed]

    # -- documents ------------------------------------------------------------------------

    def commit(self, doc: Document) -> None:
        """Write the document record: from now on the document is complete and searchable."""
        self.commit_many([doc])

    def commit_many(self, docs: Sequence[Document]) -> None:
        for start in range(0, len(docs), self.batch_size):
            batch = docs[start : start + self.batch_size]
            self._docs.upsert(
                ids=[d.id for d in batch],
                embeddings=[_ONE] * len(batch),
                documents=[json.dumps(asdict(d)) for d in batch],
                metadatas=[{"type": _RECORD, "kind": d.kind, "source": d.source} for d in batch],
            )
        if docs:
            self._bump()

    def get(self, doc_id: str) -> Document | None:
        return self.get_many([doc_id]).get(doc_id)

    def get_many(self, doc_ids: Iterable[str]) -> dict[str, Document]:
        ids = [i for i in dict.fromkeys(doc_ids) if i not in (_GENERATION_ID, _IDENTITY_ID)]
        if not ids:
            return {}
        got = self._docs.get(ids=ids, include=["documents"])
        return {i: _document(text) for i, text in zip(got["ids"], got["documents"], strict=True)}

    def documents(
        self,
        *,
        source_prefix: str | None = None,
        kind: str | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> list[Document]:
        """Committed documents, ordered by first source path."""
        where: dict[str, Any] = {"type": _RECORD}
        if kind:
            where = {"$and": [where, {"kind": kind}]}
        found: list[Document] = []
        page = 0
        while True:
            got = self._docs.get(where=where, include=["documents"], limit=1000, offset=page)
            found.extend(_document(text) for text in got["documents"])
            if len(got["ids"]) < 1000:
                break
            page += 1000
        if source_prefix:
            found = [d for d in found if any(s.startswith(source_prefix) for s in d.sources)]
        found.sort(key=lambda d: (d.source, d.id))
        return found[offset : None if limit is None else offset + limit]

    def ids_of_every_knowledge_base(self) -> set[str]:
        """The document ids of every knowledge base in this Chroma (each `<name>_documents`
        collection), not only this one's: knowledge bases in one data dir share its copies."""
        ids: set[str] = set()
        for collection in self.client.list_collections():
            name = collection if isinstance(collection, str) else collection.name
            if not name.endswith("_documents"):
                continue
            docs = self.client.get_collection(name, embedding_function=None)
            offset = 0
            while True:
                got = docs.get(include=[], limit=1000, offset=offset)
                ids.update(got["ids"])
                if len(got["ids"]) < 1000:
                    break
                offset += 1000
        return ids

    def find_by_source(self, source: str) -> list[Document]:
        return [d for d in self.documents() if source in d.sources]

    def count(self) -> int:
        return len(self._docs.get(where={"type": _RECORD}, include=[])["ids"])

    def chunk_count(self) -> int:
        return int(self._chunks.count())

    def remove(self, doc_id: str) -> Document | None:
        """Delete a document's record, then its chunks. Remote files are the caller's."""
        doc = self.get(doc_id)
        self._docs.delete(ids=[doc_id])
        self.delete_chunks(doc_id)
        self._bump()
        return doc

    def generation(self) -> str:
        got = self._docs.get(ids=[_GENERATION_ID], include=["metadatas"])
        return str(got["metadatas"][0]["value"]) if got["ids"] else ""

    def _bump(self) -> None:
        value = uuid.uuid4().hex
        _WRITTEN.add(value)
        self._docs.upsert(
            ids=[_GENERATION_ID],
            embeddings=[_ONE],
            documents=[""],
            metadatas=[{"type": "generation", "value": value}],
        )
        self._seen = value


def _chunk_meta(c: Chunk) -> dict[str, Any]:
    return {
        "doc_id": c.doc_id,
        "part": c.part,
        "n": c.n,
        "page_start": c.page_start,
        "page_end": c.page_end,
        "char_start": c.char_start,
        "char_end": c.char_end,
        "context": c.context,
    }


def _chunk(text: str, meta: dict[str, Any]) -> Chunk:
    return Chunk(
        doc_id=meta["doc_id"],
        part=int(meta["part"]),
        n=int(meta["n"]),
        text=text,
        page_start=int(meta["page_start"]),
        page_end=int(meta["page_end"]),
        char_start=int(meta["char_start"]),
        char_end=int(meta["char_end"]),
        context=str(meta.get("context") or ""),  # absent in chunks written before headers
    )


def _document(text: str) -> Document:
    raw = json.loads(text)
    raw["sources"] = tuple(raw["sources"])
    raw["notes"] = tuple(raw["notes"])
    raw["parts"] = tuple(Part(**p) for p in raw["parts"])
    raw["files"] = tuple(RemoteFile(**f) for f in raw["files"])
    return Document(**raw)

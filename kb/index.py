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

Writers of one document take turns (`Index.claim`, a `kb.claims` claim on its id across the
threads and processes of this machine): a record is changed only as read under its claim
(`Index.update`), so a removed document is never written back and a source added meanwhile is
never lost, and `remove` holds the same claim while it deletes record, chunks and files. A
document's epoch (kept in its lock file) changes whenever its chunks, copy or stored files may
have been deleted outside a commit: a writer that built a new document without its claim, and
finds the epoch it read before it started moved, puts back what may be missing before it
commits.

With embedded Chroma each process holds the vector index in memory: `refresh` reopens the
client when another process has committed since this one last looked (each generation this
process writes remembers the one it replaced, read under a claim every writer takes), and
waits for the calls other threads are making on the old client first.
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

from kb.claims import Claims
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
# Generations this process wrote, each with the one it replaced: a process whose own writes are
# all that happened since the generation it last read has a current index without reopening.
_FOLLOWS: dict[str, str] = {}
_FOLLOWS_KEPT = 100_000
_FOLLOWS_LOCK = threading.Lock()


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


def refuse_earlier_layout(settings: Settings) -> None:
    """Refuse to make a knowledge base afresh in its own directory (`Settings.kb_dir`) when an
    earlier version made one of the same name in the `default` knowledge base's Chroma, which
    it then shared: starting empty would hide its documents without a word."""
    from kb.settings import DEFAULT_KB

    if settings.chroma_url or settings.kb_name == DEFAULT_KB or settings.chroma_dir.exists():
        return
    shared = settings.for_kb(DEFAULT_KB)
    if not (shared.chroma_dir / "chroma.sqlite3").is_file():
        return
    client = connect(shared)
    try:
        names = {c if isinstance(c, str) else c.name for c in client.list_collections()}
    finally:
        client.close()
    if f"{settings.kb_name}_documents" in names:
        raise ConfigError(
            f"knowledge base {settings.kb_name!r} is in {shared.chroma_dir}, where an earlier "
            f"version kept every knowledge base; this one keeps it in {settings.chroma_dir}",
            hint=f"create {settings.chroma_dir} and ingest its files again there, or use "
            "another name",
        )


class _Swap:
    """Calls on the open client, many at a time, and a reopen, alone: a reopen waits for the
    calls in flight and holds new ones back until the new client is open (closing a client
    under a call in another thread breaks it)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._users = 0
        self._swapping = False
        self._local = threading.local()

    @contextlib.contextmanager
    def use(self) -> Iterator[None]:
        depth: int = getattr(self._local, "depth", 0)
        if depth == 0:
            with self._cond:
                while self._swapping:
                    self._cond.wait()
                self._users += 1
        self._local.depth = depth + 1
        try:
            yield
        finally:
            self._local.depth = depth
            if depth == 0:
                with self._cond:
                    self._users -= 1
                    if self._users == 0:
                        self._cond.notify_all()

    @contextlib.contextmanager
    def swap(self) -> Iterator[bool]:
        """Alone with the client; False (and nothing waited for) inside a call of this
        thread, which would wait for itself."""
        if getattr(self._local, "depth", 0):
            yield False
            return
        with self._cond:
            while self._swapping:
                self._cond.wait()
            self._swapping = True
            while self._users:
                self._cond.wait()
        try:
            yield True
        finally:
            with self._cond:
                self._swapping = False
                self._cond.notify_all()


class Index:
    def __init__(
        self,
        client: Any,
        kb_name: str,
        model: str,
        dimension: int,
        reopen: Callable[[], Any] | None = None,
        claims: Claims | None = None,
        backend: str = "torch",
    ) -> None:
        self.client = client
        self.kb_name = kb_name
        self.model = model
        self.dimension = dimension
        self.backend = backend
        self.batch_size = int(client.get_max_batch_size())
        self.claims = claims or Claims(None)  # the lock files of this machine's writers
        self._reopen = reopen  # embedded Chroma: how to open a fresh client on the same path
        self._swap = _Swap()
        self._open_collections()
        self._seen = self._generation()

    def _open_collections(self) -> None:
        self._chunks = self.client.get_or_create_collection(
            f"{self.kb_name}_chunks",
            metadata={
                "hnsw:space": "cosine",
                "hnsw:construction_ef": 200,
                "hnsw:search_ef": 200,
                "kb_model": self.model,
                "kb_dim": self.dimension,
                "kb_backend": self.backend,
            },
            embedding_function=None,
        )
        stored = self._chunks.metadata or {}
        if stored.get("kb_model") != self.model or stored.get("kb_dim") != self.dimension:
            raise ModelMismatch(
                f"knowledge base {self.kb_name!r} was built with {stored.get('kb_model')!r} "
                f"(dimension {stored.get('kb_dim')}), not {self.model!r} "
                f"(dimension {self.dimension})",
                hint="set KB_EMBEDDING_MODEL back, or use another KB_NAME",
            )
        self._check_backend(str(stored.get("kb_backend") or "torch"))  # torch came first
        self._docs = self.client.get_or_create_collection(
            f"{self.kb_name}_documents", metadata={"kb_model": self.model}, embedding_function=None
        )
        self.kb_id = self._identity()

    def _check_backend(self, stored: str) -> None:
        """Vectors of another backend are accepted only when proven equal (`VECTORS`)."""
        from kb.embedding import VECTORS

        if VECTORS.get(stored) == VECTORS.get(self.backend):
            return
        raise ModelMismatch(
            f"knowledge base {self.kb_name!r} holds vectors made by the {stored!r} embedding "
            f"backend, which differ from those of {self.backend!r}: they cannot be searched "
            "or mixed together",
            hint=f"set KB_EMBED_BACKEND={stored}, or use another KB_KB_NAME",
        )

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
        refuse_earlier_layout(settings)
        reopen = None if settings.chroma_url else partial(connect, settings)
        return cls(
            connect(settings),
            settings.kb_name,
            embedder.name,
            embedder.dimension,
            reopen,
            Claims(settings.lock_dir),
            embedder.backend,
        )

    def refresh(self) -> None:
        """Embedded Chroma keeps the vector index in each process's memory: when another
        process (an ingest beside a running API, another API worker) has committed since, open
        a fresh client, which reads its writes. A Chroma server is always current. The reopen
        waits for the calls other threads are making on the old client."""
        if self._reopen is None:
            return
        generation = self.generation()
        if self._current(generation):
            return
        with self._swap.swap() as alone:
            if not alone:
                return  # called inside a call of this thread: the next call reopens
            generation = self._generation()
            if self._current(generation):
                return
            self.client.close()
            self.client = self._reopen()
            self._open_collections()
            self._seen = generation  # read before the reopen: the new client holds it

    def _current(self, generation: str) -> bool:
        """True when every commit since the generation last read was this process's own."""
        seen = self._seen
        with _FOLLOWS_LOCK:
            step = generation
            while step != seen:
                if step not in _FOLLOWS:
                    return False
                step = _FOLLOWS[step]
        self._seen = generation
        return True

    def close(self) -> None:
        with self._swap.swap():
            self.client.close()

    def ping(self) -> None:
        try:
            with self._swap.use():
                self.client.heartbeat()
        except Exception as exc:
            raise Unavailable(f"Chroma is not reachable: {exc}") from exc

    # -- claims ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def claim(self, *doc_ids: str) -> Iterator[None]:
        """Be the only writer of these documents on this machine for the block (reentrant)."""
        with self.claims.hold_all(doc_ids):
            yield

    def epoch(self, doc_id: str) -> str:
        """The document's epoch: changes whenever its chunks, copy or stored files may have
        been deleted outside a commit (`new_epoch`)."""
        with self.claims.hold(doc_id) as held:
            return held.read()

    def new_epoch(self, doc_id: str) -> None:
        """Say that `doc_id`'s chunks, copy or stored files may have been deleted: a writer
        that built it under the epoch before puts them back before it commits."""
        with self.claims.hold(doc_id) as held:
            held.write(uuid.uuid4().hex)

    def update(self, doc_id: str, change: Callable[[Document], Document]) -> Document | None:
        """Change a committed record as read under its claim and commit the result (unless
        `change` returns the record itself); None, with nothing written, when there is no
        record (a removed document is never written back)."""
        with self.claim(doc_id):
            current = self.get(doc_id)
            if current is None:
                return None
            new = change(current)
            if new is not current:
                self.commit(new)
            return new

    # -- chunks ---------------------------------------------------------------------------

    def add_chunks(self, chunks: Sequence[Chunk], embeddings: np.ndarray) -> None:
        for start in range(0, len(chunks), self.batch_size):
            batch = chunks[start : start + self.batch_size]
            with self._swap.use():
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
            with self._swap.use():
                self._chunks.delete(where={"doc_id": {"$in": list(doc_ids[start : start + 500])}})

    def delete_chunk_ids(self, chunk_ids: Sequence[str]) -> None:
        for start in range(0, len(chunk_ids), self.batch_size):
            with self._swap.use():
                self._chunks.delete(ids=list(chunk_ids[start : start + self.batch_size]))

    def chunk_ids(self, doc_ids: Sequence[str]) -> set[str]:
        """The ids of the chunks stored for these documents, committed or not."""
        found: set[str] = set()
        for start in range(0, len(doc_ids), 500):
            where = {"doc_id": {"$in": list(doc_ids[start : start + 500])}}
            with self._swap.use():
                found.update(self._chunks.get(where=where, include=[])["ids"])
        return found

    def chunks(self, doc_id: str) -> list[Chunk]:
        with self._swap.use():
            got = self._chunks.get(where={"doc_id": doc_id}, include=["documents", "metadatas"])
        found = [_chunk(t, m) for t, m in zip(got["documents"], got["metadatas"], strict=True)]
        return sorted(found, key=lambda c: (c.part, c.n))

    def chunk_vectors(self, doc_id: str) -> tuple[list[Chunk], np.ndarray]:
        """A document's chunks, in order, and their embeddings (one row each)."""
        import numpy as np

        with self._swap.use():
            got = self._chunks.get(
                where={"doc_id": doc_id}, include=["documents", "metadatas", "embeddings"]
            )
        rows = sorted(
            zip(got["documents"], got["metadatas"], got["embeddings"], strict=True),
            key=lambda row: (int(row[1]["part"]), int(row[1]["n"])),
        )
        chunks = [_chunk(text, meta) for text, meta, _ in rows]
        vectors = np.array([vector for _, _, vector in rows], dtype=np.float32)
        return chunks, vectors.reshape(len(rows), self.dimension)

    def iter_chunks(self, batch_size: int = 1000) -> Iterator[Chunk]:
        """Every chunk of a committed document."""
        committed = {d.id for d in self.documents()}
        offset = 0
        while True:
            with self._swap.use():
                got = self._chunks.get(
                    include=["documents", "metadatas"], limit=batch_size, offset=offset
                )
            if not got["ids"]:
                return
            for text, meta in zip(got["documents"], got["metadatas"], strict=True):
                if meta["doc_id"] in committed:
                    yield _chunk(text, meta)
            offset += len(got["ids"])

    def query(self, embedding: np.ndarray, k: int) -> list[ChunkHit]:
        """The `k` nearest chunks of committed documents, cosine similarity as score."""
        return self.query_many([embedding], k)[0]

    def query_many(self, embeddings: Sequence[np.ndarray], k: int) -> list[list[ChunkHit]]:
        """`query` for each embedding, in one Chroma query: several at once cost about a
        third of each alone."""
        self.refresh()
        with self._swap.use():
            if not len(embeddings) or self._chunks.count() == 0:
                return [[] for _ in embeddings]
            got = self._chunks.query(
                query_embeddings=list(embeddings),
                n_results=k,
                include=["documents", "metadatas", "distances"],
            )
        found = [
            [
                ChunkHit(_chunk(text, meta), 1.0 - float(dist))
                for text, meta, dist in zip(texts, metas, dists, strict=True)
            ]
            for texts, metas, dists in zip(
                got["documents"], got["metadatas"], got["distances"], strict=True
            )
        ]
        committed = self.get_many({h.chunk.doc_id for hits in found for h in hits})
        return [[h for h in hits if h.chunk.doc_id in committed] for hits in found]

    # -- documents ------------------------------------------------------------------------

    def commit(self, doc: Document) -> None:
        """Write the document record: from now on the document is complete and searchable.
        A record that may exist already is written under its claim, as read under it
        (`update`, `claim`)."""
        self.commit_many([doc])

    def commit_many(self, docs: Sequence[Document]) -> None:
        for start in range(0, len(docs), self.batch_size):
            batch = docs[start : start + self.batch_size]
            with self._swap.use():
                self._docs.upsert(
                    ids=[d.id for d in batch],
                    embeddings=[_ONE] * len(batch),
                    documents=[json.dumps(asdict(d)) for d in batch],
                    metadatas=[
                        {"type": _RECORD, "kind": d.kind, "source": d.source} for d in batch
                    ],
                )
        if docs:
            self._bump()

    def get(self, doc_id: str) -> Document | None:
        return self.get_many([doc_id]).get(doc_id)

    def get_many(self, doc_ids: Iterable[str]) -> dict[str, Document]:
        ids = [i for i in dict.fromkeys(doc_ids) if i not in (_GENERATION_ID, _IDENTITY_ID)]
        if not ids:
            return {}
        with self._swap.use():
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
            with self._swap.use():
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
        with self._swap.use():
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
        with self._swap.use():
            return len(self._docs.get(where={"type": _RECORD}, include=[])["ids"])

    def chunk_count(self) -> int:
        with self._swap.use():
            return int(self._chunks.count())

    def remove(self, doc_id: str) -> Document | None:
        """Delete a document's record, then its chunks, under its claim, and give it a new
        epoch. Remote files are the caller's (who holds the claim while deleting them)."""
        with self.claim(doc_id):
            doc = self.get(doc_id)
            with self._swap.use():
                self._docs.delete(ids=[doc_id])
            self.delete_chunks(doc_id)
            self.new_epoch(doc_id)
            self._bump()
        return doc

    def generation(self) -> str:
        with self._swap.use():
            return self._generation()

    def _generation(self) -> str:
        got = self._docs.get(ids=[_GENERATION_ID], include=["metadatas"])
        return str(got["metadatas"][0]["value"]) if got["ids"] else ""

    def _bump(self) -> None:
        """Write a new generation, remembering the one it follows (read under the claim that
        every writer on this machine takes to bump, so none is missed)."""
        value = uuid.uuid4().hex
        with self.claims.hold(f"generation-{self.kb_name}"), self._swap.use():
            before = self._generation()
            with _FOLLOWS_LOCK:
                _FOLLOWS[value] = before
                while len(_FOLLOWS) > _FOLLOWS_KEPT:  # the oldest go: a reopen, not a miss
                    del _FOLLOWS[next(iter(_FOLLOWS))]
            self._docs.upsert(
                ids=[_GENERATION_ID],
                embeddings=[_ONE],
                documents=[""],
                metadatas=[{"type": "generation", "value": value}],
            )


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

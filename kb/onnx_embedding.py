"""The embedding model on ONNX Runtime: the same vectors as sentence-transformers, faster, and
without importing torch or transformers (onnxruntime and tokenizers only).

The model folder gives the tokenizer (`tokenizer.json`), the input length
(`sentence_bert_config.json`) and the pooling (`1_Pooling/config.json`: mean of the token
vectors, the only pooling supported here); the graph comes from `kb.onnx_export`, cached in the
data dir. Vectors are mean-pooled over the real tokens and normalised, as sentence-transformers
does. ONNX Runtime uses every core this process may run on, with threads that sleep rather than
spin while they wait (ingest extracts files in another process meanwhile).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kb.embedding import _LOCK_STEP, embed_in_steps, resolve_model_path
from kb.errors import ConfigError
from kb.onnx_export import INPUTS, onnx_model

if TYPE_CHECKING:
    import numpy as np

BACKENDS = {"onnx": "fp32", "onnx-int8": "int8"}  # backend: graph variant


def available_cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class OnnxEmbedder:
    """A sentence-transformers model run by ONNX Runtime, safe to share between threads."""

    def __init__(
        self,
        name: str,
        *,
        backend: str = "onnx",
        cache_dir: Path,
        batch_size: int = 64,
        threads: int = 0,
    ) -> None:
        if backend not in BACKENDS:
            raise ConfigError(f"unknown ONNX backend {backend!r}: use {' or '.join(BACKENDS)}")
        model_dir = Path(resolve_model_path(name))
        if not (model_dir / "tokenizer.json").is_file():
            raise ConfigError(
                f"embedding model {name!r} is not a local sentence-transformers folder with a "
                "tokenizer.json, which the ONNX backend needs",
                hint="use KB_EMBED_BACKEND=torch for it",
            )
        max_tokens, dimension = _read_config(model_dir)
        path = onnx_model(model_dir, name, BACKENDS[backend], cache_dir)
        import onnxruntime as ort
        from tokenizers import Tokenizer

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or available_cores()
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # The session is made in a thread of its own (ONNX Runtime lets go of the GIL), so a
        # command's other imports and Chroma's opening go on meanwhile; the first embedding
        # waits for it, and a graph it cannot load is a ConfigError there. Not a daemon: a
        # process that ends sooner waits for it rather than stop it inside ONNX Runtime.
        self._session: Future[tuple[Any, set[str]]] = Future()
        threading.Thread(
            target=self._load, args=(ort, str(path), options), name="kb-onnx-load"
        ).start()
        tokenizer_file = str(model_dir / "tokenizer.json")
        self._tokenizer = Tokenizer.from_file(tokenizer_file)
        self._tokenizer.enable_truncation(max_tokens)
        pad = self._tokenizer.padding or {}
        self._tokenizer.enable_padding(
            pad_id=int(pad.get("pad_id", 0)), pad_token=str(pad.get("pad_token", "[PAD]"))
        )
        self._offsets_tokenizer = Tokenizer.from_file(tokenizer_file)
        self._offsets_tokenizer.no_truncation()
        self._offsets_tokenizer.no_padding()
        self.name = name
        self.backend = backend
        self.dimension = dimension
        self.max_tokens = max_tokens
        self.path = path
        self._step = min(batch_size, _LOCK_STEP)
        self._lock = threading.Lock()

    def _load(self, ort: Any, path: str, options: Any) -> None:
        try:
            session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        except Exception as exc:
            self._session.set_exception(ConfigError(f"cannot load the ONNX graph {path}: {exc}"))
            return
        self._session.set_result((session, {i.name for i in session.get_inputs()} & set(INPUTS)))

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return embed_in_steps(texts, self._encode, self._lock, self.dimension, self._step)

    def _encode(self, texts: list[str]) -> np.ndarray:
        import numpy as np

        if not texts:
            return np.empty((0, self.dimension), dtype=np.float32)
        encoded = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encoded], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        session, inputs = self._session.result()
        tokens: Any = session.run(None, {k: v for k, v in feed.items() if k in inputs})
        weights = mask[:, :, None].astype(np.float32)
        pooled = (tokens[0] * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        vectors: np.ndarray = (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)
        return vectors

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        encoded = self._offsets_tokenizer.encode(text, add_special_tokens=False)
        return [(int(a), int(b)) for a, b in encoded.offsets]


def _read_config(model_dir: Path) -> tuple[int, int]:
    """The input length and the vector size, from the model folder; refused unless the
    pooling is the mean of the token vectors."""
    try:
        st = json.loads((model_dir / "sentence_bert_config.json").read_text())
        pooling = json.loads((model_dir / "1_Pooling" / "config.json").read_text())
        config = json.loads((model_dir / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the model's configuration in {model_dir}: {exc}") from exc
    modes = sorted(k for k, v in pooling.items() if k.startswith("pooling_mode_") and v)
    if modes != ["pooling_mode_mean_tokens"]:
        raise ConfigError(
            f"the ONNX backend pools by the mean of the token vectors; {model_dir} asks for "
            f"{', '.join(modes) or 'no pooling'}",
            hint="use KB_EMBED_BACKEND=torch for this model",
        )
    max_tokens = min(int(st["max_seq_length"]), int(config.get("max_position_embeddings", 512)))
    dimension = int(pooling.get("word_embedding_dimension") or config["hidden_size"])
    return max_tokens, dimension

"""The ONNX graph of a sentence-transformers model, built once from its local files and cached.

`onnx_model(model_dir, label, variant, cache_dir)` returns the path of the graph,
building it when it is missing: torch exports the transformer (`fp32`), and ONNX Runtime
quantises its matrix products to 8 bits per output channel (`int8`, made from the `fp32`
graph). The file name carries a key of the model's files (name, size and modification time of
each), the variant and the versions of the tools that made it, so a changed model or a new ONNX
Runtime builds a new graph and the old one goes.

A graph is written to a temporary file in the cache folder and renamed into place only once it
is complete, so a reader never sees half a graph; the build holds a claim (`kb.claims`, its lock
file in the cache folder) on its key, so processes that need it at once (of any data dir that
shares the cache) build it once. A temporary file a killed build left
is removed by the next build of the same key.

Only a build imports torch and transformers (about 10 s, once per model and cache folder);
loading and running the cached graph needs only onnxruntime and tokenizers.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import warnings
from pathlib import Path
from typing import Any

from kb.claims import Claims
from kb.errors import ConfigError

VARIANTS = ("fp32", "int8")
FORMAT = 2  # the way graphs are built here: a change builds every graph again
OPSET = 17
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
OUTPUT = "last_hidden_state"
_SKIPPED = {"README.md", ".gitattributes"}  # model files that do not change the graph


def model_key(model_dir: Path, variant: str) -> str:
    """A key of what the graph is built from: the model's files, the variant and the tools."""
    import onnxruntime

    files = sorted(
        (str(path.relative_to(model_dir)), stat.st_size, stat.st_mtime_ns)
        for path in model_dir.rglob("*")
        if path.is_file() and path.name not in _SKIPPED and (stat := path.stat())
    )
    if not files:
        raise ConfigError(f"no model files in {model_dir}")
    described = json.dumps([FORMAT, variant, onnxruntime.__version__, files])
    return hashlib.sha256(described.encode()).hexdigest()[:16]


def onnx_model(model_dir: Path, label: str, variant: str, cache_dir: Path) -> Path:
    """The path of the model's graph in `cache_dir` (named after `label`, the model's name),
    built first when missing or stale."""
    if variant not in VARIANTS:
        raise ConfigError(f"unknown ONNX variant {variant!r}: use {' or '.join(VARIANTS)}")
    key = model_key(model_dir, variant)
    stem = f"{_slug(label)}-{variant}"
    target = cache_dir / f"{stem}-{key}.onnx"
    if target.is_file():
        return target
    with Claims(cache_dir).hold(f"onnx-{key}"):
        if target.is_file():  # another process built it while this one waited
            return target
        cache_dir.mkdir(parents=True, exist_ok=True)
        for leftover in cache_dir.glob(f".{target.name}.*.tmp"):  # a killed build's
            leftover.unlink(missing_ok=True)
        temp = cache_dir / f".{target.name}.{os.getpid()}.tmp"
        try:
            if variant == "fp32":
                _export(model_dir, temp)
            else:
                _quantise(onnx_model(model_dir, label, "fp32", cache_dir), temp)
            _fsync(temp)
            os.replace(temp, target)
        finally:
            temp.unlink(missing_ok=True)
        _fsync(cache_dir)
    for stale in cache_dir.glob(f"{stem}-*.onnx"):  # graphs of an older model or tool
        if stale != target:
            stale.unlink(missing_ok=True)
    return target


def _export(model_dir: Path, path: Path) -> None:
    """Export the transformer (token ids in, token vectors out) with torch."""
    try:
        import torch
        from transformers import AutoModel
        from transformers.utils import logging as hf_logging
    except ImportError as exc:
        raise ConfigError(f"building the ONNX graph needs torch and transformers: {exc}") from exc

    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]

    try:
        # eager attention: exported, torch's fused attention brings a mask written with
        # IsNaN and Where over every score, a third of ONNX Runtime's time for nothing
        model = AutoModel.from_pretrained(str(model_dir), attn_implementation="eager").eval()
    except Exception as exc:
        raise ConfigError(f"cannot load the model in {model_dir} for export: {exc}") from exc

    class Transformer(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            out = self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            )
            return out.last_hidden_state

    ids = torch.ones((2, 8), dtype=torch.long)
    axes = {name: {0: "batch", 1: "tokens"} for name in (*INPUTS, OUTPUT)}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Transformer(),
            (ids, torch.ones_like(ids), torch.zeros_like(ids)),
            str(path),
            input_names=list(INPUTS),
            output_names=[OUTPUT],
            dynamic_axes=axes,
            opset_version=OPSET,
            dynamo=False,
        )


def _quantise(source: Path, path: Path) -> None:
    """Dynamic int8 quantisation of the matrix products, one scale per output channel (one
    scale per tensor moved vectors further: cosine to fp32 down to 0.94)."""
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # a warning that suggests another pre-processing step
    try:
        quantize_dynamic(
            source,
            path,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["MatMul"],
            per_channel=True,
        )
    finally:
        root.setLevel(level)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        with contextlib.suppress(OSError):  # not every file system syncs a folder
            os.fsync(fd)
    finally:
        os.close(fd)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "model"

"""The ONNX Runtime backends: built offline from the packaged weights, cached whole, the same
vectors as torch (fp32), close ones (int8), kept apart from other vectors in one collection."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kb.embedding import resolve_model_path
from kb.errors import ConfigError, ModelMismatch
from kb.index import Index, connect
from kb.onnx_embedding import OnnxEmbedder
from kb.onnx_export import model_key, onnx_model
from kb.settings import DEFAULT_MODEL, Settings

ROOT = Path(__file__).resolve().parents[2]

# Real text of the kinds kb ingests: prose, figures, a table row, other scripts, and a text
# longer than the model reads (both runtimes cut it at the same token).
TEXTS = [
    "Check the bilge pump every spring and replace the impeller every two seasons.",
    "Net revenue rose 12.4% to $3,215.7 million in fiscal 2015, driven by North America.",
    "| Segment | 2014 | 2015 |\n| Beverages | 1,024 | 1,187 |",
    "Der Jahresabschluss wurde nach HGB aufgestellt; die Prüfung erfolgte ohne Einwände.",
    "東京の本社は二〇二五年に移転し、研究開発費は前年比で八パーセント増加した。",
    "하버 300 펌프는 매년 봄에 점검해야 합니다.",
    "x",
    " ".join(["The committee reviewed liquidity, covenants and the revolving facility."] * 60),
    *(
        (ROOT / "examples" / name).read_text().split("\n\n")[1]
        for name in ("espresso-manual.md", "travel-expense-policy.md", "glossary.txt")
    ),
]


@pytest.fixture(scope="session")
def onnx_fp32(model_cache: Path) -> OnnxEmbedder:
    return OnnxEmbedder(DEFAULT_MODEL, backend="onnx", cache_dir=model_cache)


def test_fp32_onnx_equals_torch_on_real_text(embedder, onnx_fp32) -> None:  # type: ignore[no-untyped-def]
    assert (onnx_fp32.dimension, onnx_fp32.max_tokens) == (embedder.dimension, embedder.max_tokens)
    ours, theirs = onnx_fp32.embed(TEXTS), embedder.embed(TEXTS)
    cosines = (ours * theirs).sum(axis=1)
    assert cosines.min() >= 1 - 1e-4, cosines
    assert abs((ours**2).sum(axis=1) - 1).max() < 1e-5  # normalised
    for text in TEXTS:  # the same tokens, so the same chunks
        assert onnx_fp32.token_offsets(text) == embedder.token_offsets(text)
    one_by_one = np.vstack([onnx_fp32.embed([t]) for t in TEXTS])  # padding changes nothing
    assert abs(one_by_one - ours).max() < 1e-5


def test_int8_vectors_stay_close_to_fp32(model_cache: Path, onnx_fp32) -> None:  # type: ignore[no-untyped-def]
    int8 = OnnxEmbedder(DEFAULT_MODEL, backend="onnx-int8", cache_dir=model_cache)
    assert int8.path != onnx_fp32.path
    cosines = (int8.embed(TEXTS) * onnx_fp32.embed(TEXTS)).sum(axis=1)
    assert 0.97 <= cosines.min() < 1 - 1e-4, cosines  # close, and not the same vectors


def test_the_onnx_path_imports_neither_torch_nor_transformers(
    onnx_fp32,  # type: ignore[no-untyped-def]
    model_cache: Path,
    tmp_path: Path,
) -> None:
    """A query loads the cached graph with onnxruntime and tokenizers only."""
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from kb.service import load_embedder\n"
        "from kb.settings import Settings\n"
        f"s = Settings(data_dir=Path({str(tmp_path)!r}), model_cache=Path({str(model_cache)!r}))\n"
        "e = load_embedder(s)\n"
        "v = e.embed(['tides and harbours'])\n"
        "heavy = ('torch', 'transformers', 'sentence_transformers')\n"
        "heavy = [m for m in heavy if m in sys.modules]\n"
        "print(e.backend, v.shape, heavy)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    env.pop("KB_EMBED_BACKEND", None)
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["onnx", "(1,", "384)", "[]"]
    assert not (tmp_path / "models").exists()  # the shared cache served it


def test_a_graph_is_built_once_rebuilt_when_the_model_changes_and_never_left_half_written(
    tmp_path: Path,
) -> None:
    """Two processes that need a missing graph at once: one builds it, both load it whole, no
    temporary file stays. A changed model file makes a new graph and the old one goes."""
    model = tmp_path / "model"
    shutil.copytree(resolve_model_path(DEFAULT_MODEL), model)
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / f".all-MiniLM-L6-v2-fp32-{model_key(model, 'fp32')}.onnx.1.tmp").write_bytes(b"x")
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from kb.onnx_export import onnx_model\n"
        "import onnxruntime\n"
        "p = onnx_model(Path(sys.argv[1]), 'all-MiniLM-L6-v2', 'fp32', Path(sys.argv[2]))\n"
        "onnxruntime.InferenceSession(str(p), providers=['CPUExecutionProvider'])\n"
        "print(p)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(model), str(cache)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in outs]
    first = Path(outs[0][0].strip())
    assert Path(outs[1][0].strip()) == first
    assert sorted(p.name for p in cache.glob("*.onnx")) == [first.name]
    assert not list(cache.glob(".*.tmp"))  # the killed build's leftover went too
    built = first.stat().st_mtime_ns
    assert onnx_model(model, DEFAULT_MODEL, "fp32", cache) == first  # cached: not built again
    assert first.stat().st_mtime_ns == built

    config = model / "config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "kb_note": 1}))
    os.utime(config, ns=(built + 10**9, built + 10**9))
    second = onnx_model(model, DEFAULT_MODEL, "fp32", cache)
    assert second != first and second.is_file() and not first.exists()


def test_a_model_the_onnx_backend_cannot_run_is_a_clear_error(tmp_path: Path) -> None:
    model = tmp_path / "cls-model"
    shutil.copytree(resolve_model_path(DEFAULT_MODEL), model)
    pooling = model / "1_Pooling" / "config.json"
    config = json.loads(pooling.read_text())
    config.update(pooling_mode_mean_tokens=False, pooling_mode_cls_token=True)
    pooling.write_text(json.dumps(config))
    with pytest.raises(ConfigError, match=r"pools by the mean.*pooling_mode_cls_token"):
        OnnxEmbedder(str(model), cache_dir=tmp_path / "cache")
    with pytest.raises(ConfigError, match="not a local sentence-transformers folder"):
        OnnxEmbedder("some-org/some-hub-model", cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache").exists()  # refused before anything was built


def test_vectors_of_another_backend_are_refused_unless_they_are_the_same(
    settings: Settings,
) -> None:
    """A knowledge base remembers the backend that embedded it: torch and fp32 ONNX make the
    same vectors and share it; int8 vectors never mix with them."""
    client = connect(settings)
    Index(client, settings.kb_name, DEFAULT_MODEL, 384, backend="torch")
    Index(client, settings.kb_name, DEFAULT_MODEL, 384, backend="onnx")  # the same vectors
    with pytest.raises(ModelMismatch) as refused:
        Index(client, settings.kb_name, DEFAULT_MODEL, 384, backend="onnx-int8")
    assert "made by the 'torch' embedding backend" in str(refused.value)
    assert "KB_EMBED_BACKEND=torch" in str(refused.value)

    Index(client, "quantised", DEFAULT_MODEL, 384, backend="onnx-int8")
    with pytest.raises(ModelMismatch, match="'onnx-int8' embedding backend, which differ"):
        Index(client, "quantised", DEFAULT_MODEL, 384, backend="onnx")


def test_the_backend_setting_is_checked() -> None:
    assert Settings.from_env({}, env_file=None).embed_backend == "onnx"
    with pytest.raises(ConfigError, match="KB_EMBED_BACKEND='tensorflow' is not a backend"):
        Settings.from_env({"KB_EMBED_BACKEND": "tensorflow"}, env_file=None)
    with pytest.raises(ConfigError, match="KB_EMBED_THREADS must be at least 0"):
        Settings.from_env({"KB_EMBED_THREADS": "-1"}, env_file=None)

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ingest import ingest_paths
from kb.lexical import LexicalIndex, tokenize

DOCS = {
    "valves.txt": "Pressure valves regulate the flow of steam in the boiler room.",
    "bread.txt": "Sourdough bread needs a starter, flour, water and patience.",
    "orbits.txt": "Satellites in geostationary orbits circle the earth once a day.",
}


def write(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def test_tokenize_stems_and_drops_stop_words() -> None:
    assert tokenize(["The running dogs are in the gardens"]) == [["run", "dog", "garden"]]


def test_search_follows_ingest_update_and_removal(knowledge_base: Any, tmp_path: Path) -> None:
    kb = knowledge_base
    folder = write(tmp_path / "docs", DOCS)
    ingest_paths(kb, [folder])
    lexical = LexicalIndex(kb.index, kb.settings)

    hits = lexical.search("steam boiler", 5)
    assert [kb.index.get(h.chunk.doc_id).title for h in hits] == ["valves"]
    assert lexical.search("zeppelin", 5) == []

    (folder / "bread.txt").write_text("A zeppelin floats over the bakery.", encoding="utf-8")
    ingest_paths(kb, [folder])
    assert [kb.index.get(h.chunk.doc_id).title for h in lexical.search("zeppelin", 5)] == ["bread"]
    assert lexical.search("sourdough", 5) == []

    (doc,) = kb.index.find_by_source(str((folder / "orbits.txt").resolve()))
    kb.remove(doc.id)
    assert lexical.search("satellites orbits", 5) == []
    assert len(lexical.refresh().chunks) == kb.index.chunk_count() == 2


def test_a_fresh_process_loads_the_saved_index(knowledge_base: Any, tmp_path: Path) -> None:
    kb = knowledge_base
    ingest_paths(kb, [write(tmp_path / "docs", DOCS)])
    first = LexicalIndex(kb.index, kb.settings)
    expected = first.search("flour water", 3)
    saved = list((kb.settings.data_dir / "bm25" / kb.settings.kb_name).iterdir())
    assert len(saved) == 1

    second = LexicalIndex(kb.index, kb.settings)
    loaded = second._load(kb.index.generation())
    assert loaded is not None and len(loaded.chunks) == 3
    assert second.search("flour water", 3) == expected


def test_an_empty_index_finds_nothing(knowledge_base: Any) -> None:
    assert LexicalIndex(knowledge_base.index, knowledge_base.settings).search("anything", 5) == []


@pytest.mark.parametrize("k", [0, -1])
def test_non_positive_k_finds_nothing(knowledge_base: Any, tmp_path: Path, k: int) -> None:
    ingest_paths(knowledge_base, [write(tmp_path / "docs", DOCS)])
    assert LexicalIndex(knowledge_base.index).search("steam", k) == []

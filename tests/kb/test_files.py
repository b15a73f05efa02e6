"""One file-name cleaner for every name kb writes: temp files, stored copies, remote names."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from kb.files import NAME_BYTES, LocalFileStore, clean_filename, named_before_ids, owns


def test_path_parts_and_unsafe_characters_go() -> None:
    assert clean_filename("../../etc/passwd") == "passwd"
    assert clean_filename("C:\\Users\\me\\report.pdf") == "report.pdf"
    assert clean_filename('a<b>:"|?*c.txt') == "a_b_c.txt"
    assert clean_filename("tab\there\x00.md") == "tabhere.md"
    assert clean_filename("Annual Report (2023).pdf") == "Annual Report (2023).pdf"


def test_nothing_left_gives_the_fallback() -> None:
    assert clean_filename("..", fallback="upload") == "upload"
    assert clean_filename("/", fallback="upload") == "upload"
    assert clean_filename(None) == "file"


def test_long_names_are_cut_in_bytes_keeping_the_extension() -> None:
    name = "報告" * 100 + ".pdf"  # 600 bytes in UTF-8: over what a file system takes
    cleaned = clean_filename(name)
    assert cleaned.endswith(".pdf") and cleaned.startswith("報告")
    assert len(cleaned.encode()) <= NAME_BYTES
    assert len(clean_filename("x" * 400 + ".pdf", limit=100)) == 100


@given(st.text(max_size=400), st.integers(min_value=20, max_value=255))
def test_any_name_is_safe_and_within_its_limit(name: str, limit: int) -> None:
    cleaned = clean_filename(name, limit=limit)
    assert cleaned and len(cleaned.encode()) <= limit
    assert not set('<>:"|?*\\/') & set(cleaned)
    assert cleaned not in (".", "..") and all(ord(c) >= 32 for c in cleaned)


KB_ID = "0123456789abcdef"
DOC = "ab" * 32


def test_local_files_are_named_with_the_knowledge_base_identity(tmp_path: Path) -> None:
    store = LocalFileStore(tmp_path, "default", KB_ID)
    file_id = store.upload(DOC, "1-5", "report.pdf", "application/pdf", b"%PDF")
    assert file_id == f"local-{KB_ID}-{DOC[:32]}-p1-5"
    assert store.upload(DOC, "1-5", "report.pdf", "application/pdf", b"%PDF") == file_id
    (stored,) = store.list()
    assert stored.filename == f"kb-default-{KB_ID}-{DOC[:32]}-p1-5-report.pdf"
    assert owns("default", KB_ID, stored.filename)
    assert not owns("default", "fedcba9876543210", stored.filename)
    assert stored.created_at and stored.size_bytes == 4


def test_local_store_lists_its_own_and_older_files_only(tmp_path: Path) -> None:
    ours = LocalFileStore(tmp_path, "default", KB_ID)
    own = ours.upload(DOC, 0, "a.txt", "text/plain", b"ours")
    rebuilt = LocalFileStore(tmp_path, "default", "fedcba9876543210")  # same folder, new identity
    rebuilt.upload(DOC, 0, "a.txt", "text/plain", b"theirs")
    root = tmp_path / "default"
    (root / f"local-{DOC[:32]}-p0").write_bytes(b"old")  # as earlier versions stored it
    (root / f"local-{DOC[:32]}-p0.meta").write_text(f"kb-default-{DOC[:32]}-p0-a.txt\ntext/plain\n")
    (root / f"local-{'cd' * 16}-p0").write_bytes(b"no meta: a crashed write")
    listed = {s.file_id: s.filename for s in ours.list()}
    assert listed == {
        own: f"kb-default-{KB_ID}-{DOC[:32]}-p0-a.txt",
        f"local-{DOC[:32]}-p0": f"kb-default-{DOC[:32]}-p0-a.txt",
    }
    assert named_before_ids("default", listed[f"local-{DOC[:32]}-p0"])
    assert ours.exists(f"local-{DOC[:32]}-p0")  # older ids still resolve

"""One file-name cleaner for every name kb writes: temp files, stored copies, remote names."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from kb.files import NAME_BYTES, clean_filename


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

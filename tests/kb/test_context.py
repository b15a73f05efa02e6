"""Contextual chunk headers: document titles and page headings, never running headers."""

from __future__ import annotations

from kb.context import HEADING_CHARS, document_context, join_context, page_headings
from kb.lexical import tokenize
from kb.types import Page


def test_document_context_names_the_document_once() -> None:
    assert document_context("ADBE 10K FY15", "/f/ADOBE_2015_10K.pdf") == (
        "ADBE 10K FY15 — ADOBE 2015 10K"
    )
    assert document_context("ACME_2015_10K", "/f/ACME_2015_10K.pdf") == "ACME 2015 10K"
    assert document_context("Boiler manual", "upload:boiler-manual.pdf") == "Boiler manual"
    assert document_context("4983", "/corpus/docs/4983.txt") == "", "a numbered file has none"
    assert len(document_context("x" * 400, "/f/a.pdf")) <= 160


def _filing(n: int) -> list[Page]:
    pages = []
    for number in range(1, n + 1):
        body = (
            "the company continued to invest in research and development across all of its "
            "segments during the year, as described in the notes that follow this section"
        )
        pages.append(Page(number, f"Table of Contents\nACME CORP\n{number}\n{body}\nmore text."))
    pages[4] = Page(
        5,
        "Table of Contents\nACME CORP\n5\nCONSOLIDATED BALANCE\nSHEETS\n"
        "(In millions)\nAssets 1,234 5,678\nCash 12 13",
    )
    pages[6] = Page(
        7,
        "Table of Contents\n7\nItem 7. Management's Discussion and Analysis\n"
        "Revenue grew in every segment.",
    )
    return pages


def test_page_headings_skip_running_headers_and_prose() -> None:
    headings = page_headings(_filing(10))
    assert headings[5] == "CONSOLIDATED BALANCE SHEETS (In millions)"
    assert headings[7] == "Item 7. Management's Discussion and Analysis"
    assert headings[1] == "" and headings[2] == "", "a page that opens with prose has none"
    assert set(headings) == set(range(1, 11))


def test_page_headings_are_bounded_and_handle_odd_pages() -> None:
    two_lines = (
        "NOTES TO THE CONSOLIDATED\nFINANCIAL STATEMENTS AND SUPPLEMENTARY DATA FOR THE YEARS ENDED"
    )
    headings = page_headings([Page(1, ""), Page(2, "   \n\n"), Page(3, two_lines), Page(4, "12")])
    assert headings[1] == headings[2] == headings[4] == ""
    assert 0 < len(headings[3]) <= HEADING_CHARS and not headings[3].endswith(" ")


def test_join_context_skips_empty_parts() -> None:
    assert join_context("ACME 2015 10K", "") == "ACME 2015 10K"
    assert join_context("", "BALANCE SHEETS") == "BALANCE SHEETS"
    assert join_context("A", "B") == "A — B"


def test_bm25_tokens_split_letters_from_digits_and_keep_the_word() -> None:
    (tokens,) = tokenize(["What was the FY2015 ratio? p53 in 2023Q2"])
    assert {"fy2015", "fy", "2015", "p53", "53", "2023q2", "2023", "q2"} <= set(tokens) | {"q2"}
    assert "2015" in tokenize(["ACME 2015 10K"])[0]

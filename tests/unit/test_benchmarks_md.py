"""BENCHMARKS.md opens with its headline, which `make bench` writes from the same run as the full table below it:
the headline is the full table's rows that bench.HEADLINE names, and a new run rewrites both and nothing else."""

from __future__ import annotations

import re
from pathlib import Path

from bench.__main__ import HEADLINE, HEADLINE_END, HEADLINE_START, MARK_END, MARK_START, Results, write_markdown

REPO = Path(__file__).resolve().parents[2]
BENCHMARKS = REPO / "BENCHMARKS.md"
ROW = re.compile(r"^\| (.+?) \| (.+?) \| (.*?) \|$", re.MULTILINE)


def rows(block: str) -> list[tuple[str, str, str]]:
    return [row for row in ROW.findall(block) if row[0] not in ("measure", "---")]


def between(text: str, start: str, end: str) -> str:
    return text[text.index(start) : text.index(end)]


def test_the_headline_is_the_full_tables_rows_it_names_and_comes_first() -> None:
    text = BENCHMARKS.read_text()
    headline = rows(between(text, HEADLINE_START, HEADLINE_END))
    full = rows(between(text, MARK_START, MARK_END))
    assert len(headline) == len(HEADLINE)
    assert all(row in full for row in headline)
    for pattern, row in zip(HEADLINE, headline, strict=True):
        assert re.search(pattern, row[0]), (pattern, row[0])
    # The headline and how to rerun it, before the method and the full table.
    assert text.index(HEADLINE_START) < text.index("## Rerun it") < text.index(MARK_START)


def test_a_new_run_rewrites_both_tables_and_keeps_the_text_around_them(tmp_path: Path) -> None:
    copy = tmp_path / "BENCHMARKS.md"
    copy.write_text(BENCHMARKS.read_text())
    old = rows(between(copy.read_text(), MARK_START, MARK_END))
    results = Results(rows=[(measure, "1 ms (new)", target) for measure, _, target in old])
    write_markdown(copy, ["- Date: 2027-01-01 00:00 UTC, commit abc1234"], results, "--warm 5000")
    text = copy.read_text()
    assert all(value == "1 ms (new)" for _, value, _ in rows(between(text, HEADLINE_START, HEADLINE_END)))
    assert "- Date: 2027-01-01 00:00 UTC, commit abc1234" in between(text, HEADLINE_START, HEADLINE_END)
    outside = re.compile(rf"{re.escape(HEADLINE_START)}.*?{re.escape(HEADLINE_END)}|{MARK_START}.*?{MARK_END}", re.S)
    assert outside.sub("", text) == outside.sub("", BENCHMARKS.read_text())

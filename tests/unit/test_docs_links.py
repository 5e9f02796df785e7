"""Every relative link in the documentation resolves: to a file or folder of the repository and, with an anchor, to a
heading of that file, as GitHub names headings. The README maps every page of docs/."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCUMENTS = sorted([REPO / "README.md", REPO / "SECURITY.md", REPO / "BENCHMARKS.md", *(REPO / "docs").glob("*.md")])
# [text](target) and ![alt](target); the text may hold `code` and one level of brackets.
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(([^()\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^ *```.*?^ *```", re.MULTILINE | re.DOTALL)


def prose(text: str) -> str:
    """The text without its fenced code blocks, where brackets and # lines are code."""
    return FENCE.sub("", text)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped (not - or _), each space a -."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    names: set[str] = set()
    for heading in re.findall(r"^#{1,6} +(.+?) *#*$", prose(path.read_text()), re.MULTILINE):
        name = slug(heading)
        candidate, count = name, 0
        while candidate in names:  # a repeated heading gets -1, -2, ...
            count += 1
            candidate = f"{name}-{count}"
        names.add(candidate)
    return names


def links(path: Path) -> list[str]:
    return [target for target in LINK.findall(prose(path.read_text())) if not re.match(r"[a-z]+:", target)]


@pytest.mark.parametrize("document", DOCUMENTS, ids=[str(path.relative_to(REPO)) for path in DOCUMENTS])
def test_every_relative_link_and_anchor_resolves(document: Path) -> None:
    broken = []
    for target in links(document):
        file, _, anchor = unquote(target).partition("#")
        resolved = (document.parent / file).resolve() if file else document
        if not resolved.exists():
            broken.append(f"{target}: no {resolved.relative_to(REPO) if resolved.is_relative_to(REPO) else resolved}")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(f"{target}: no heading '{anchor}' in {resolved.relative_to(REPO)}")
    assert not broken, "\n".join(broken)


def test_the_readme_links_every_page_of_docs() -> None:
    linked = {(REPO / unquote(target).partition("#")[0]).resolve() for target in links(REPO / "README.md")}
    pages = {path.resolve() for path in (REPO / "docs").glob("*.md")} | {REPO / "BENCHMARKS.md", REPO / "SECURITY.md"}
    assert not pages - linked, sorted(str(page.relative_to(REPO)) for page in pages - linked)


def test_the_slugs_are_githubs() -> None:
    assert slug("What your organisation answers: `check_genesys --session`") == (
        "what-your-organisation-answers-check_genesys---session"
    )
    assert slug("Step 2: API Gateway's CloudWatch Logs role") == "step-2-api-gateways-cloudwatch-logs-role"
    assert slug("Running the function in Docker with SAM (`sam local`)") == (
        "running-the-function-in-docker-with-sam-sam-local"
    )

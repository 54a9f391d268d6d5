"""Every relative link in README.md and docs/*.md leads somewhere: the file exists, and so does the heading an
`#anchor` names (GitHub's heading ids). Moving text between the README and docs/ must not leave dead links."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

_FENCE = re.compile(r"^\s*(```|~~~)")
_LINK = re.compile(r"(?<!\!)\[(?:[^\[\]]|\[[^\]]*\])*\]\(([^()\s]+)(?:\s+\"[^\"]*\")?\)")
_IMAGE = re.compile(r"!\[[^\]]*\]\(([^()\s]+)\)")
_REFERENCE = re.compile(r"^\s*\[[^\]]+\]:\s*(\S+)")
_CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+\1")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def _prose_lines(text: str) -> Iterator[tuple[int, str]]:
    """Lines outside fenced code blocks, with inline code spans blanked (a link inside code is not a link)."""
    fenced = False
    for number, line in enumerate(text.splitlines(), 1):
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield number, _CODE_SPAN.sub("", line)


def slug(heading: str) -> str:
    """GitHub's id for a heading: link text kept, lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """The ids of every heading of a Markdown page, duplicates numbered as GitHub does (`-1`, `-2`, ...)."""
    seen: dict[str, int] = {}
    out: set[str] = set()
    fenced = False
    for line in page.read_text().splitlines():
        if _FENCE.match(line):
            fenced = not fenced
            continue
        match = None if fenced else _HEADING.match(line)
        if match:
            base = slug(match.group(2))
            count = seen.get(base, 0)
            seen[base] = count + 1
            out.add(base if count == 0 else f"{base}-{count}")
    return out


def links(page: Path) -> Iterator[tuple[int, str]]:
    """(line, target) of every inline, image and reference-style link of a page, outside code."""
    for number, line in _prose_lines(page.read_text()):
        for pattern in (_LINK, _IMAGE, _REFERENCE):
            for match in pattern.finditer(line):
                yield number, match.group(1)


def broken(page: Path, root: Path = ROOT) -> list[str]:
    """The relative links of `page` whose file or heading does not exist, as readable lines."""
    problems = []
    for number, target in links(page):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):
            continue  # https:, mailto: and the like: not ours to check offline
        path, _, anchor = target.partition("#")
        where = f"{page.relative_to(root)}:{number}: ({target})"
        resolved = (page.parent / path).resolve() if path else page.resolve()
        shown = resolved.relative_to(root) if resolved.is_relative_to(root) else resolved
        if not resolved.exists():
            problems.append(f"{where} no such file {shown}")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            problems.append(f"{where} no heading with id #{anchor} in {shown}")
    return problems


def test_slugs_are_githubs() -> None:
    assert slug("Resilience wrapper (optional)") == "resilience-wrapper-optional"
    assert slug("Assets without a clone: `anthropic-otel assets export`") == \
        "assets-without-a-clone-anthropic-otel-assets-export"
    assert slug("Peers (run of 2026-11-22, before the floor variant)") == \
        "peers-run-of-2026-11-22-before-the-floor-variant"
    assert slug("What `.ci/run` changes on a machine") == "what-cirun-changes-on-a-machine"


def test_the_checker_finds_a_dead_file_and_a_dead_anchor(tmp_path: Path) -> None:
    """The check itself can fail: a page with a missing file, a missing heading and links only inside code."""
    root = tmp_path.resolve()
    (root / "docs").mkdir()
    (root / "docs" / "telemetry.md").write_text("# Contract\n\n```\n# not a heading\n```\n")
    page = root / "docs" / "probe.md"
    page.write_text("# Probe\n\n[ok](#probe) [ok](telemetry.md#contract) [file](nowhere.md)\n"
                    "[anchor](telemetry.md#no-such-heading) [fenced heading](telemetry.md#not-a-heading)\n"
                    "`[code](nowhere-in-code.md)`\n```\n[fenced](nowhere-fenced.md)\n```\n")
    problems = broken(page, root)
    assert len(problems) == 3, problems
    assert "no such file docs/nowhere.md" in problems[0]
    assert "no heading with id #no-such-heading in docs/telemetry.md" in problems[1]
    assert "#not-a-heading" in problems[2]


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_relative_links_and_anchors_exist(page: Path) -> None:
    assert not broken(page), "\n".join(broken(page))


def test_every_docs_page_is_linked_from_the_readme() -> None:
    """A page in docs/ that the README does not link is a page nobody finds."""
    linked = {(ROOT / target.partition("#")[0]).resolve() for _, target in links(ROOT / "README.md")}
    orphans = [page.name for page in PAGES[1:] if page.resolve() not in linked]
    assert not orphans, f"docs/ pages the README does not link: {orphans}"


# Dashboards, manifests, rules and code link into this repository's pages by URL (a panel's "docs" link, a
# runbook_url); moving a README section breaks them as surely as a relative link.
REPOSITORY_URL = re.compile(r"https://github\.com/anthropic-otel/anthropic-otel(?:/blob/main/([\w./-]+))?#([\w-]+)")
LINKING_FILES = ["dashboards", "deploy", "alerts", "src", "pyproject.toml"]


def repository_urls() -> Iterator[tuple[str, str, str]]:
    """(where, path, anchor) of every URL with an anchor into this repository, in the files above."""
    for name in LINKING_FILES:
        top = ROOT / name
        for file in [top] if top.is_file() else sorted(top.rglob("*")):
            if file.is_file() and file.suffix in (".json", ".yml", ".yaml", ".py", ".toml", ".md"):
                for match in REPOSITORY_URL.finditer(file.read_text(errors="replace")):
                    yield str(file.relative_to(ROOT)), match.group(1) or "README.md", match.group(2)


def test_urls_into_the_repository_name_existing_headings() -> None:
    found = list(repository_urls())
    assert any(anchor == "resilience-wrapper-optional" for _, _, anchor in found), "the dashboards' links are read"
    problems = sorted({f"{where}: {path}#{anchor}" for where, path, anchor in found
                       if anchor != "readme" and (not (ROOT / path).is_file() or anchor not in anchors(ROOT / path))})
    assert not problems, "URLs into pages that have no such heading:\n" + "\n".join(problems)

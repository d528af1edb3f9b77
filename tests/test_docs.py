"""The docs hold together: every link reaches a file and a heading, findings link to their tables, README is short."""

import re
from pathlib import Path

import pytest

DOCS = [Path("README.md"), *sorted(Path("docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    kept = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return kept.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    return {slug(line.lstrip("#")) for line in text.splitlines() if line.startswith("#")}


def local_links(path: Path) -> list[tuple[Path, str]]:
    """(target file, anchor) of each link that is not a web address."""
    found = []
    for target in LINK.findall(path.read_text()):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        file, _, anchor = target.partition("#")
        found.append(((path.parent / file).resolve() if file else path.resolve(), anchor))
    return found


@pytest.mark.parametrize("doc", DOCS, ids=str)
def test_every_link_reaches_a_file_and_its_heading(doc):
    for target, anchor in local_links(doc):
        assert target.exists(), f"{doc} links to {target}, which does not exist"
        if anchor and target.suffix == ".md":
            assert anchor in anchors(target), f"{doc} links to #{anchor}, which {target.name} has no heading for"


def test_every_finding_links_to_the_table_that_shows_it():
    rows = [line for line in Path("docs/findings.md").read_text().splitlines()
            if line.startswith("| ") and not line.startswith(("| claim", "|---"))]
    assert len(rows) >= 15
    for row in rows:
        claim, figures, table = [cell.strip() for cell in row.strip("|").split(" | ")]
        assert re.search(r"\d", figures), f"no figure for: {claim}"
        assert LINK.search(table), f"no table linked for: {claim}"


def test_readme_starts_with_the_two_commands_and_stays_short():
    text = Path("README.md").read_text()
    body = text.split("---", 2)[2]  # after the Space's YAML header
    blocks = re.findall(r"```bash\n(# run the \w+)\n", body)
    assert blocks[:2] == ["# run the app", "# run the tests"]
    assert len(text.split()) <= 1200
    assert 'pytest -m "not slow"' in text and "NOT_SLOW" not in text  # the time is stated, not a placeholder

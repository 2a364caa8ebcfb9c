"""The repository explains itself: its docs exist, their links resolve, they cite no design documents
outside the repository, and the sandbox scenarios in the code are the ones the docs list."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ledgerlink.sandbox.bank import SCENARIOS

ROOT = Path(__file__).resolve().parents[2]
DOCS = ("README.md", "architecture.md", "api.md", "operations.md", "sandbox.md")


def _markdown_files() -> list[Path]:
    return [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]


@pytest.mark.parametrize("name", DOCS)
def test_each_docs_page_exists_and_is_listed_in_the_index(name: str) -> None:
    page = ROOT / "docs" / name
    assert page.is_file() and page.read_text(encoding="utf-8").startswith("# ")
    if name != "README.md":
        assert f"]({name})" in (ROOT / "docs" / "README.md").read_text(encoding="utf-8")


def test_relative_links_in_the_docs_resolve() -> None:
    broken = []
    for path in _markdown_files():
        for target in re.findall(r"\]\(([^)\s]+)\)", path.read_text(encoding="utf-8")):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            resolved = (path.parent / target.split("#", 1)[0]).resolve()
            if not resolved.exists():
                broken.append(f"{path.relative_to(ROOT)} -> {target}")
    assert broken == []


def test_nothing_cites_design_documents_outside_the_repository() -> None:
    pattern = re.compile(r"\.\./shared/|shared/(?:design|reference)/")
    offenders = [
        str(path.relative_to(ROOT))
        for path in [*(ROOT / "src").rglob("*.py"), *_markdown_files()]
        if pattern.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []


def test_every_sandbox_scenario_is_documented_in_the_readme_and_the_sandbox_page() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    sandbox = (ROOT / "docs" / "sandbox.md").read_text(encoding="utf-8")
    for scenario in sorted(SCENARIOS):
        assert f"| `{scenario}` |" in readme, scenario
        assert f"| `{scenario}` |" in sandbox, scenario
    assert "approve=1" in readme and "approve=1" in sandbox

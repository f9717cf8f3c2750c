"""The documents serve their readers: the README stays short, every relative link in
the documents leads somewhere, both programs' --help ends by saying where the documents
are, and no document speaks of issue numbers."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

DOCUMENTS = [ROOT / "README.md", ROOT / "deploy" / "README.md",
             *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def test_the_readme_is_at_most_15000_bytes() -> None:
    assert len((ROOT / "README.md").read_bytes()) <= 15_000


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_leads_to_a_file(document: Path) -> None:
    for target in LINK.findall(document.read_text()):
        if "://" not in target:
            assert (document.parent / target).exists(), f"{document.name} links to {target}"


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_document_names_issue_numbers(document: Path) -> None:
    text = document.read_text()
    assert not re.search(r"\bissues? ?#?\d", text, re.I), document.name


@pytest.mark.parametrize("module", ["sensor", "sensor.collector"])
def test_help_ends_with_the_documents(module: str) -> None:
    result = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True,
                            text=True, check=True, cwd=ROOT)
    closing = " ".join(result.stdout.strip().split("\n\n")[-1].split())
    assert closing.startswith(f"Documents (in {ROOT}):"), closing
    named = re.findall(r"[\w/]+\.md", closing)
    assert {"README.md", "deploy/README.md", "docs/architecture.md"} <= set(named)
    for document in named:
        assert (ROOT / document).is_file(), f"--help names {document}, which is missing"


def test_the_readmes_lookup_example_finds_what_it_shows() -> None:
    """The tour's `rules lookup`, run on the bundled lists (the package's
    /etc/madoc/rules.yaml is rules/rules.yaml): every value it names is listed."""
    (line,) = [line for line in (ROOT / "README.md").read_text().splitlines()
               if line.startswith("madoc-sensor rules lookup")]
    words = line.split("#")[0].split()
    values = words[words.index("/etc/madoc/rules.yaml") + 1:]
    done = subprocess.run([sys.executable, "-m", "sensor", "rules", "lookup", "--rules",
                           str(ROOT / "rules" / "rules.yaml"), *values],
                          capture_output=True, text=True, check=True, cwd=ROOT)
    answers = done.stdout.splitlines()
    assert len(answers) == len(values) >= 2
    assert all(": MATCH " in answer for answer in answers), answers

"""madoc-sensor: a network sensor for national anti-malware campaigns."""

from pathlib import Path

__version__ = "0.2.0"
# The folder the package sits in: in a checkout, where rules/, pcaps/ and docs/ are.
SOURCE_TREE = Path(__file__).resolve().parent.parent
# Where the Debian package puts the same documents.
PACKAGE_DOCS = Path("/usr/share/doc/madoc-sensor")


def documents_epilog() -> str:
    """The closing lines of both programs' --help: where the documents are (the
    checkout's own folder when running from one)."""
    where = next((f"in {folder}" for folder in (SOURCE_TREE, PACKAGE_DOCS)
                  if (folder / "docs" / "architecture.md").is_file()),
                 "in the madoc-sensor source tree")
    return (f"Documents ({where}): README.md (what it is, quick start, a tour), "
            "deploy/README.md (installing and running a sensor and a collector), "
            "docs/rules.md (blocklist formats and matching), docs/collector.md (API, tokens, "
            "storage), docs/report.md (the campaign forms' numbers), docs/architecture.md, "
            "docs/performance.md.")

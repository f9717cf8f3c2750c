"""Under CI=true a skipped test fails, unless tests/allowed-skips.txt names it; outside CI
a skip stays a skip. Checked by running pytest on a test that skips, with this suite's
conftest."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, allowed_skips


def run_skipping_test(tmp_path: Path, ci: bool) -> subprocess.CompletedProcess:
    test = tmp_path / "test_skips.py"
    test.write_text("import pytest\n\ndef test_needs_a_tool():\n"
                    "    pytest.skip('needs a tool that failed')\n")
    env = {k: v for k, v in os.environ.items() if k != "CI"} | ({"CI": "true"} if ci else {})
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "tests.conftest", "-q",
                           "-p", "no:cacheprovider", "--rootdir", str(tmp_path), str(test)],
                          capture_output=True, text=True, cwd=ROOT, env=env)


def test_a_skip_fails_in_ci_and_says_why(tmp_path: Path) -> None:
    done = run_skipping_test(tmp_path, ci=True)
    assert done.returncode == 1, done.stdout
    assert "1 failed" in done.stdout.splitlines()[-1]
    assert "skipped in CI, which allows no skip but those of tests/allowed-skips.txt" in done.stdout
    assert "needs a tool that failed" in done.stdout


def test_a_skip_outside_ci_is_a_skip(tmp_path: Path) -> None:
    done = run_skipping_test(tmp_path, ci=False)
    assert done.returncode == 0 and done.stdout.splitlines()[-1].startswith("1 skipped")


def test_the_reviewed_list_is_empty_on_this_projects_ci() -> None:
    assert allowed_skips() == {}

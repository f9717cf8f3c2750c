"""The shipped Prometheus files pass `promtool`: the scrape configuration and the
alerting rules check clean, and the rules fire (and stay quiet) as
madoc-alerts.test.yml says on series that promtool feeds them."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT

PROMETHEUS = ROOT / "deploy" / "prometheus"
HERE = Path(__file__).parent


def promtool(*args: str, cwd: Path) -> str:
    if not shutil.which("promtool"):
        pytest.fail("needs promtool (Debian's prometheus package; .ci/run installs it)")
    done = subprocess.run(["promtool", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def test_scrape_config_checks_clean() -> None:
    out = promtool("check", "config", "prometheus.yml", cwd=PROMETHEUS)
    assert "SUCCESS" in out


def test_alerting_rules_check_clean() -> None:
    out = promtool("check", "rules", "madoc-alerts.yml", cwd=PROMETHEUS)
    assert "SUCCESS" in out


def test_alerting_rules_fire_as_specified() -> None:
    out = promtool("test", "rules", "madoc-alerts.test.yml", cwd=HERE)
    assert "SUCCESS" in out

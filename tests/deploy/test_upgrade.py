"""An upgrade from the previous release: deploy/README.md's install and first run as
that release printed them, with its own package, on a clean Debian 12 with a booted
systemd; then this checkout's package installed over it with apt, as an admin
upgrades. Configuration, token, secret, database and spool are kept and the running
services restarted on the new code."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from sensor import __version__
from tests.conftest import ROOT
from tests.deploy.booted import BootedRoot
from tests.deploy.guide import DAY, STATE, build_package, install_and_first_run

# The commit the previous release was built from (debian/changelog's second entry).
PREVIOUS_RELEASE = "0a0963444eb1830da57380b767cb6f8cd170437c"
UNIT = "Sở Tài chính"               # the first run's sensor's unit

pytestmark = pytest.mark.slow


def changelog_versions() -> list[str]:
    return re.findall(r"^madoc-sensor \(([^)]+)\)", (ROOT / "debian/changelog").read_text(),
                      re.M)


@pytest.fixture(scope="module")
def previous(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The previous release's checkout, its package built by its own guide's step."""
    tree = tmp_path_factory.mktemp("previous")
    archive = subprocess.run(["git", "-c", "safe.directory=*", "-C", str(ROOT), "archive",
                              PREVIOUS_RELEASE], capture_output=True)
    if archive.returncode:
        pytest.fail(f"the previous release's commit {PREVIOUS_RELEASE} is not in this "
                    f"clone (a shallow clone?): {archive.stderr.decode().strip()}")
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
    build_package(tree)
    return tree


def computers(root: BootedRoot) -> tuple[int, int]:
    report = json.loads(root.must(f"madoc-collector report --from {DAY} --to {DAY} -f json"))
    row = next(row for row in report["form2"] if row["unit"] == UNIT)
    return row["computers_covered"], row["computers_found"]


def test_the_previous_release_is_the_changelogs_previous_entry(previous: Path) -> None:
    assert changelog_versions()[:1] == [__version__]
    built = [p.name for p in (previous / "dist").glob("*.deb")]
    assert built == [f"madoc-sensor_{changelog_versions()[1]}_amd64.deb"]


def test_an_upgrade_keeps_the_data_and_restarts_the_services_on_the_new_code(
        booted: BootedRoot, previous: Path) -> None:
    install_and_first_run(booted, previous)
    old_version = booted.must("dpkg-query -W -f '${Version}' madoc-sensor")
    pids = booted.must("systemctl show -P MainPID madoc-collector madoc-sensor").split()
    report = booted.must(f"madoc-collector report --from {DAY} --to {DAY} -f json")
    configuration = {name: (booted.path / "etc/madoc" / name).read_bytes()
                     for name in ("sensor.yaml", "collector.yaml", "rules.yaml", "token")}
    covered, found = computers(booted)
    assert covered == 55 and found > 0

    package = build_package(ROOT) / f"madoc-sensor_{__version__}_amd64.deb"
    (booted.path / "root/next").mkdir()
    shutil.copy(package, booted.path / "root/next")
    booted.must(f"apt install -y ./next/{package.name}")

    assert old_version == changelog_versions()[1]
    assert booted.must("dpkg-query -W -f '${Version}' madoc-sensor") == __version__
    assert booted.must("systemctl is-active madoc-collector madoc-sensor").split() == [
        "active", "active"]
    assert set(booted.must("systemctl show -P MainPID madoc-collector madoc-sensor")
               .split()).isdisjoint(pids)
    assert {name: (booted.path / "etc/madoc" / name).read_bytes()
            for name in configuration} == configuration
    assert booted.must(f"madoc-collector report --from {DAY} --to {DAY} -f json") == report
    assert "the token is sensor 'gw1'" in booted.must("madoc-sensor doctor")
    # The secret that names computers is kept: the capture replayed again through the
    # upgraded sensor counts the same computers, not each twice.
    booted.must("madoc-sensor replay -c /etc/madoc/sensor.yaml "
                "/usr/share/doc/madoc-sensor/examples/office.pcap")
    assert computers(booted) == (covered, found)
    assert booted.must(f"find {STATE} -user root -print") == ""

"""The systemd units: `systemd-analyze verify` finds nothing to say about any of them, the
sandboxing directives the deployment asks for are there, and `systemd-analyze security`
rates the services' exposure within the targets (collector ≤ 2.5, sensor ≤ 4.0; the
figures are in deploy/README.md)."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from sensor.collector.config import CollectorConfig
from sensor.collector.report import Period
from tests.conftest import ROOT

UNITS = ROOT / "deploy" / "systemd"
INSTALLED_BIN = "/opt/madoc/bin/"       # where deploy/README.md installs the programs
TARGETS = {"madoc-collector.service": 2.5, "madoc-sensor.service": 4.0,
           "madoc-report.service": 2.5}


@pytest.fixture(scope="module", autouse=True)
def systemd_analyze() -> None:
    if not shutil.which("systemd-analyze"):
        pytest.fail("needs systemd-analyze (Debian's systemd package; .ci/run installs it)")


def unit_files() -> list[Path]:
    return sorted(p for p in UNITS.iterdir() if p.suffix in (".service", ".timer"))


def directives(unit: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in unit.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            found.setdefault(key, []).append(value)
    return found


def test_every_unit_verifies_cleanly(tmp_path: Path) -> None:
    """verify also checks that ExecStart's program exists: the copies point at this
    checkout's programs instead of /opt/madoc/bin, nothing else is changed."""
    assert {p.name for p in unit_files()} >= {
        "madoc-sensor.service", "madoc-collector.service",
        "madoc-rules-update.service", "madoc-rules-update.timer",
        "madoc-report.service", "madoc-report.timer"}
    bin_dir = Path(sys.executable).parent
    for unit in unit_files():
        text = unit.read_text()
        assert text.count(INSTALLED_BIN) == text.count("ExecStart=/opt"), unit.name
        (tmp_path / unit.name).write_text(text.replace(INSTALLED_BIN, f"{bin_dir}/"))
    for program in ("madoc-sensor", "madoc-collector"):
        assert (bin_dir / program).exists()
    done = subprocess.run(["systemd-analyze", "verify", "--man=no",
                           *(str(tmp_path / p.name) for p in unit_files())],
                          capture_output=True, text=True)
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


def test_the_sensor_keeps_only_the_capture_capabilities_and_a_sandbox() -> None:
    sensor = directives(UNITS / "madoc-sensor.service")
    assert sensor["Type"] == ["notify"] and sensor["WatchdogSec"]
    assert sensor["User"] == ["madoc"]
    assert sensor["AmbientCapabilities"] == sensor["CapabilityBoundingSet"] == [
        "CAP_NET_RAW CAP_NET_ADMIN"]
    assert sensor["RestrictAddressFamilies"] == ["AF_PACKET AF_NETLINK AF_INET AF_INET6 AF_UNIX"]
    assert sensor["SystemCallFilter"][0] == "@system-service"
    for key, value in {"NoNewPrivileges": "yes", "ProtectSystem": "strict",
                       "ProtectHome": "yes", "PrivateTmp": "yes",
                       "StateDirectory": "madoc", "CacheDirectory": "madoc"}.items():
        assert sensor[key] == [value], key
    assert sensor["MemoryMax"]
    collector = directives(UNITS / "madoc-collector.service")
    assert collector["User"] == ["madoc-collector"] and collector["Type"] == ["notify"]
    assert collector["CapabilityBoundingSet"] == [""]
    users = (UNITS / "madoc.sysusers.conf").read_text().split()
    assert "madoc" in users and "madoc-collector" in users


def test_the_weekly_report_unit_writes_last_weeks_report(tmp_path: Path) -> None:
    """The report service's own command line, with this test's config and folder in place
    of /etc/madoc and /var/lib, writes every format of the last full week."""
    timer = directives(UNITS / "madoc-report.timer")
    assert timer["OnCalendar"] == ["Mon *-*-* 06:00"] and timer["Persistent"] == ["true"]
    service = directives(UNITS / "madoc-report.service")
    assert service["User"] == ["madoc-collector"] and service["Type"] == ["oneshot"]
    assert service["CapabilityBoundingSet"] == [""]
    [command] = service["ExecStart"]
    config = tmp_path / "collector.yaml"
    config.write_text(f"database: sqlite:///{tmp_path / 'collector.db'}\n")
    out = tmp_path / "reports"
    argv = shlex.split(command.replace(INSTALLED_BIN, f"{Path(sys.executable).parent}/")
                       .replace("/etc/madoc/collector.yaml", str(config))
                       .replace("/var/lib/madoc-collector/reports", str(out)))
    done = subprocess.run(argv, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    week = Period.last_full_week(datetime.now(CollectorConfig().tz).date()).iso_week
    assert sorted(p.name for p in out.iterdir()) == [
        f"madoc-report-{week}.{ext}" for ext in ("csv", "docx", "json", "md", "xlsx")]


def exposure(unit: str) -> float:
    done = subprocess.run(["systemd-analyze", "security", "--offline=true", "--no-pager",
                           str(UNITS / unit)], capture_output=True, text=True)
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d)", done.stdout)
    assert found, done.stdout + done.stderr
    return float(found.group(1))


@pytest.mark.parametrize(("unit", "target"), sorted(TARGETS.items()))
def test_exposure_is_within_the_target(unit: str, target: float) -> None:
    score = exposure(unit)
    print(f"{unit}: systemd-analyze security exposure {score}")
    assert score <= target


@pytest.mark.parametrize(("template", "config", "state"), [
    ("madoc-sensor@.service", "sensor", ["StateDirectory", "CacheDirectory", "LogsDirectory"]),
    ("madoc-collector@.service", "collector", ["StateDirectory"])])
def test_a_template_is_its_service_but_for_the_instances_config_and_folders(
        template: str, config: str, state: list[str]) -> None:
    """Same sandbox, same user, same everything but the configuration file and the state
    folders, which take the instance's name (/etc/madoc/sensor-%i.yaml, madoc/%i)."""
    instance, main = directives(UNITS / template), directives(UNITS / template.replace("@", ""))
    differing = {key for key in instance.keys() | main.keys()
                 if instance.get(key) != main.get(key)}
    assert differing == {"Description", "ExecStart", *state}
    assert instance["ExecStart"] == [main["ExecStart"][0].replace(
        f"/etc/madoc/{config}.yaml", f"/etc/madoc/{config}-%i.yaml")]
    for key in state:
        assert instance[key] == [f"{main[key][0]}/%i"]

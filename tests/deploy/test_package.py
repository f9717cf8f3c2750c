"""The Debian package, installed as deploy/README.md says on a clean Debian 12 with a
booted systemd: the guide's install and first-run commands run exactly as printed
(read from the document, so the two cannot drift), then the services, the report,
the state directories, two instances of each service, removal and purge are
checked (the upgrade from the previous release: test_upgrade.py)."""

from __future__ import annotations

import json
import re
import ssl
import urllib.request

import pytest

from tests.conftest import ROOT, planted_infected
from tests.deploy.booted import BootedRoot
from tests.deploy.guide import (
    BUILD_MARK,
    DAY,
    STATE,
    build_package,
    guide_commands,
    install_and_first_run,
)

pytestmark = pytest.mark.slow


def test_the_guide_has_a_build_step_and_a_first_run() -> None:
    blocks = guide_commands(ROOT)
    assert [b for b in blocks if b.startswith(BUILD_MARK)] == [blocks[0]]
    assert "make deb" in blocks[0] and "apt install -y ./dist/" in blocks[1]
    assert any("systemctl enable --now madoc-sensor" in b for b in blocks)


@pytest.fixture(scope="module")
def walked(booted: BootedRoot) -> BootedRoot:
    """The guide's commands: the build on this machine in the checkout, the rest as
    root in the booted root."""
    build_package(ROOT)
    install_and_first_run(booted, ROOT)
    return booted


def https_get(root: BootedRoot, path: str, **headers: str) -> bytes:
    context = ssl.create_default_context(cafile=str(root.path / "etc/madoc/collector.crt"))
    request = urllib.request.Request(f"https://127.0.0.1:9443{path}", headers=headers)
    with urllib.request.urlopen(request, context=context, timeout=30) as answer:
        return answer.read()


def test_the_services_run_as_the_units_say(walked: BootedRoot) -> None:
    assert walked.must("systemctl is-active madoc-collector madoc-sensor").split() == [
        "active", "active"]
    assert walked.must("systemctl is-enabled madoc-collector madoc-sensor "
                       "madoc-report.timer").split() == ["enabled"] * 3
    users = walked.must("for unit in madoc-collector madoc-sensor; do "
                        "stat -c %U /proc/$(systemctl show -P MainPID $unit); done").split()
    assert sorted(users) == ["madoc", "madoc-collector"]
    status = walked.must("systemctl show -P StatusText madoc-sensor")
    assert status.startswith("capturing on lo"), status


def test_help_names_the_installed_documents(walked: BootedRoot) -> None:
    for program in ("madoc-sensor", "madoc-collector"):
        closing = " ".join(walked.must(f"{program} --help").strip().split("\n\n")[-1].split())
        assert closing.startswith("Documents (in /usr/share/doc/madoc-sensor):"), closing
        for document in re.findall(r"[\w/]+\.md", closing):
            assert (walked.path / "usr/share/doc/madoc-sensor" / document).is_file(), document


def test_every_unit_verifies_in_the_installed_system(walked: BootedRoot) -> None:
    units = walked.must("ls /lib/systemd/system/madoc*").split()
    assert len(units) >= 6
    done = walked.run(f"systemd-analyze verify --man=no {' '.join(units)}")
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr


def test_the_report_is_the_same_from_the_command_line_the_page_and_the_api(
        walked: BootedRoot) -> None:
    token = (walked.path / "var/lib/madoc-collector/admin.token").read_text().strip()
    query = f"from={DAY}&to={DAY}&format=md"
    command_line = walked.must(f"madoc-collector report --from {DAY} --to {DAY} -f md")
    api = https_get(walked, f"/api/v1/report?{query}", Authorization=f"Bearer {token}")
    page = https_get(walked, f"/ui/download?{query}", Cookie=f"madoc_token={token}")
    assert command_line.encode() == api == page
    report = json.loads(walked.must(f"madoc-collector report --from {DAY} --to {DAY} "
                                    f"-f json"))
    unit = next(row for row in report["form2"] if row["unit"] == "Sở Tài chính")
    found = len(planted_infected("office.pcap"))
    assert (unit["computers_covered"], unit["computers_found"]) == (55, found)


def test_no_state_file_belongs_to_root(walked: BootedRoot) -> None:
    """Root ran tokens, units, report and replay -c on the services' state: every file
    there is still the services'."""
    assert walked.must(f"find {STATE} -user root -print") == ""
    assert walked.must("stat -c %U /var/lib/madoc/spool-gw1.db").strip() == "madoc"


def test_two_sensors_and_two_collectors_run_side_by_side(walked: BootedRoot) -> None:
    """Template instances differ from the main services by their configuration alone;
    one whose configuration names another's state refuses to start, in one line."""
    (walked.path / "etc/madoc/sensor-lo2.yaml").write_text(
        "sensor: {id: gw2, unit: Sở Y tế, interfaces: [lo], user: madoc}\n"
        "rules: /etc/madoc/rules.yaml\n"
        "eve: /var/log/madoc/lo2/eve.json\n"
        "metrics: {listen: 127.0.0.1:9580}\n")
    (walked.path / "etc/madoc/collector-dept.yaml").write_text(
        "user: madoc-collector\n"
        "listen: 127.0.0.1:9444\n"
        "metrics: {listen: 127.0.0.1:9572}\n")
    (walked.path / "etc/madoc/sensor-clash.yaml").write_text(
        "sensor: {id: gw3, interfaces: [lo], user: madoc}\n"
        "state_dir: /var/lib/madoc\n"
        "metrics: {listen: 127.0.0.1:9581}\n")
    walked.must("systemctl start madoc-sensor@lo2 madoc-collector@dept\n"
                "madoc-collector -c /etc/madoc/collector-dept.yaml tokens add dept-gw "
                "--unit 'Bệnh viện'")
    assert walked.must("systemctl is-active madoc-sensor madoc-sensor@lo2 madoc-collector "
                       "madoc-collector@dept").split() == ["active"] * 4
    assert walked.must("stat -c %U /var/lib/madoc/lo2/summary.db "
                       "/var/lib/madoc-collector/dept/collector.db").split() == [
        "madoc", "madoc-collector"]
    province = walked.must("madoc-collector tokens list")
    department = walked.must("madoc-collector -c /etc/madoc/collector-dept.yaml tokens list")
    assert "gw1" in province and "dept-gw" not in province
    assert "dept-gw" in department and "gw1" not in department
    assert walked.run("systemctl start madoc-sensor@clash").returncode != 0
    journal = walked.must("journalctl -u madoc-sensor@clash -o cat")
    assert "Traceback" not in journal
    assert ("state_dir /var/lib/madoc (/etc/madoc/sensor-clash.yaml) is outside this unit's "
            "state directory /var/lib/madoc/clash") in journal, journal
    walked.must("systemctl stop madoc-sensor@lo2 madoc-collector@dept madoc-sensor@clash")


def test_remove_keeps_the_data_and_purge_removes_it_and_the_users(
        walked: BootedRoot) -> None:
    walked.must("apt-get remove -y madoc-sensor")
    assert walked.run("systemctl is-active madoc-collector madoc-sensor").stdout.split() == [
        "inactive", "inactive"]
    assert (walked.path / "var/lib/madoc-collector/collector.db").exists()
    assert walked.must("getent passwd madoc madoc-collector").count("\n") == 2
    walked.must("apt-get purge -y madoc-sensor")
    assert walked.run(f"ls -d {STATE} 2>/dev/null").stdout == ""
    assert walked.run("getent passwd madoc madoc-collector").returncode == 2

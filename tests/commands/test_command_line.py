"""The command lines as people type them: `-c FILE` before or after the command, the
live sensor's filter names in replay, a back-fill that takes its collector and sensor id
from sensor.yaml and spools while the collector is down, and a missing service user named
with what to do about it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sensor.cli import build_parser as sensor_parser
from sensor.collector.cli import build_parser as collector_parser
from sensor.config import DLT_EN10MB, FILTERS, filter_for_link
from tests.collector.harness import Collector
from tests.conftest import ROOT, RULES, demo_captures, planted_hits, planted_infected
from tests.uplink.test_uplink_e2e import UNIT, registered


def sensor(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sensor", *args], capture_output=True,
                          text=True, cwd=ROOT)


@pytest.mark.parametrize("argv, config", [
    (["run", "-c", "a.yaml", "tokens"], None),
    (["-c", "a.yaml", "run"], "a.yaml"),
    (["run", "-c", "a.yaml"], "a.yaml"),
    (["-c", "a.yaml", "tokens", "list", "-c", "b.yaml"], "b.yaml"),
    (["--database", "sqlite:///x.db", "units", "list"], None),
    (["report", "--week", "2022-W38", "-c", "a.yaml"], "a.yaml"),
])
def test_the_collectors_config_may_follow_the_command(argv: list[str], config: str | None
                                                      ) -> None:
    if argv[-1] == "tokens":        # a command name where a file was expected: refused
        with pytest.raises(SystemExit):
            collector_parser().parse_args(argv)
        return
    args = collector_parser().parse_args(argv)
    assert args.config == (Path(config) if config else None)


@pytest.mark.parametrize("argv", [["-c", "/nonexistent/s.yaml", "run"],
                                  ["run", "-c", "/nonexistent/s.yaml"],
                                  ["doctor", "-c", "/nonexistent/s.yaml"]])
def test_the_sensors_config_may_come_before_or_after_the_command(argv: list[str]) -> None:
    result = sensor(*argv)
    assert result.returncode == 2
    assert "/nonexistent/s.yaml: cannot read" in result.stderr, result.stderr


def test_a_config_given_to_a_command_that_takes_none_is_refused() -> None:
    result = sensor("-c", "s.yaml", "rules", "check")
    assert result.returncode == 2 and "rules takes no -c/--config" in result.stderr
    assert sensor_parser().parse_args(["run"]).config is None    # main applies the default


def libpcap_count(path: Path, expression: str) -> int:
    """Packets of a capture that libpcap's own filter engine (tcpdump) lets through."""
    header = subprocess.run(["tcpdump", "-r", str(path), "-c", "1", "-nn"], capture_output=True,
                            text=True, check=True).stderr
    link = DLT_EN10MB if "link-type EN10MB" in header else 0
    done = subprocess.run(["tcpdump", "-r", str(path), "-nn", "-q",
                           filter_for_link(expression, link)],
                          capture_output=True, text=True, check=True)
    return len(done.stdout.splitlines())


@pytest.mark.parametrize("name", ["default", "all"])
def test_replay_knows_the_live_sensors_filter_names(name: str, tmp_path: Path) -> None:
    """The name is the live sensor's filter: replay reads the packets tcpdump lets
    through it, and finds every hit the captures were made with."""
    eve = tmp_path / "eve.json"
    result = sensor("replay", "--filter", name, "--eve", str(eve), *map(str, demo_captures()))
    assert result.returncode == 0, result.stderr
    packets = sum(libpcap_count(path, FILTERS[name]) for path in demo_captures())
    assert re.search(rf"^files: \d+  packets: {packets:,} ", result.stderr, re.M), result.stderr
    assert eve.read_text().count('"event_type":"alert"') == sum(map(len, planted_hits().values()))


def test_a_back_fill_from_the_configuration_spools_while_the_collector_is_down(
        tmp_path: Path) -> None:
    collector = Collector(tmp_path / "c")
    token_file = registered(collector, tmp_path, "gw1")
    config = tmp_path / "sensor.yaml"
    config.write_text(f"sensor:\n  id: gw1\n  unit: {UNIT}\n  interfaces: [eth1]\n"
                      f"rules: {RULES}\ncollector: {{url: '{collector.url}', "
                      f"token_file: {token_file}}}\nstate_dir: {tmp_path / 'state'}\n")
    captures = [str(p) for p in demo_captures()]
    down = sensor("replay", "-c", str(config), "--retry-max", "0.2", "--drain-timeout", "1",
                  *captures)
    assert down.returncode == 3, down.stderr             # spooled, left for the next run
    assert (tmp_path / "state" / "spool-gw1.db").exists()
    collector.start()
    try:
        up = sensor("replay", "-c", str(config), "--retry-max", "0.2", *captures)
        assert up.returncode == 0, up.stderr
        assert "already sent" in up.stderr                 # spooled once, not twice
        infected = {ip: (hits, indicators) for ip, (hits, indicators, status)
                    in collector.hosts().items() if status == "infected"}
        assert infected == planted_infected()
    finally:
        collector.stop()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: the user is looked up only then")
def test_a_missing_service_user_is_named_with_what_to_do(tmp_path: Path) -> None:
    config = tmp_path / "sensor.yaml"
    config.write_text(f"sensor:\n  interfaces: [lo]\n  user: madoc-no-such-user\n"
                      f"rules: {RULES}\nstate_dir: {tmp_path / 'state'}\n"
                      f"metrics: {{listen: 'off'}}\n")
    result = sensor("run", "-c", str(config))
    assert result.returncode == 2
    assert "user 'madoc-no-such-user' does not exist" in result.stderr
    assert "madoc.sysusers.conf" in result.stderr and "sensor.user" in result.stderr
    assert not (tmp_path / "state").exists()             # refused before anything was made

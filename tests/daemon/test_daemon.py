"""The live daemon on a real veth pair: capture files sent with tcpreplay give the alerts
`madoc-sensor replay` gives on the same files, with one worker and with two; SIGHUP
picks up a new indicator; SIGTERM spools every event, and the next start delivers them;
root is given up."""

from __future__ import annotations

import functools
import json
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import pytest

from sensor.config import DEFAULT_FILTER
from sensor.core.events import addr_text
from sensor.uplink.spool import decode
from tests.collector.harness import Collector
from tests.conftest import PCAPS, ROOT, RULES, run_pipeline
from tests.daemon.netns import SensorProcess, Wire

CAPTURES = [PCAPS / "office.pcap", PCAPS / "office-vlan.pcapng"]   # Ethernet: sendable


def write_config(directory: Path, wire: Wire, workers: int = 1, rules: Path = RULES,
                 collector: str = "", user: str = "root", sensor_id: str = "gw1",
                 backend: str = "libpcap") -> Path:
    config = directory / "sensor.yaml"
    config.write_text(
        f"sensor:\n  id: {sensor_id}\n  interfaces: [{wire.end_b}]\n  workers: {workers}\n"
        f"  capture: {{backend: {backend}}}\n"
        f"  user: {user}\n  internal_networks: [192.168.0.0/16, 10.0.0.0/8, fd00::/8]\n"
        f"rules: {rules}\nrules_reload_seconds: 3600\neve: {directory / 'eve.json'}\n"
        f"state_dir: {directory / 'state'}\n{collector}")
    return config


def alerts(eve: Path) -> list[str]:
    """Alert records as comparable text: everything but the time and the flow id, which
    differ between a live run and a replay."""
    found = []
    for line in eve.read_text().splitlines():
        record = json.loads(line)
        if record["event_type"] == "alert":
            record.pop("timestamp")
            record.pop("flow_id")
            found.append(json.dumps(record, sort_keys=True))
    return sorted(found)


def replay_alerts(tmp: Path, captures: list[Path], rules: Path = RULES) -> list[str]:
    eve = tmp / "replay.json"
    subprocess.run([sys.executable, "-m", "sensor", "replay", "--rules", str(rules),
                    "--filter", DEFAULT_FILTER, "--internal", "192.168.0.0/16",
                    "--internal", "10.0.0.0/8", "--internal", "fd00::/8", "--eve", str(eve),
                    "--summary-db", str(tmp / "replay-summary.db"),
                    *map(str, captures)], check=True, capture_output=True, cwd=ROOT)
    return alerts(eve)


def summary_numbers(*where: str) -> tuple:
    """Form 2 of `madoc-sensor summary` over every day up to today (a live capture's
    packets are dated now, a replay's when they were captured)."""
    done = subprocess.run([sys.executable, "-m", "sensor", "summary", *where, "--from",
                           "2000-01-01", "--to", date.today().isoformat(), "-f", "json"],
                          check=True, capture_output=True, cwd=ROOT)
    [unit] = json.loads(done.stdout)["form2"]
    return (unit["computers_covered"], unit["computers_found"], unit["computers_handled"],
            [(i["indicator"], i["hits"], i["hosts"]) for i in unit["top_indicators"]])


@functools.cache
def captured(*captures: Path) -> int:
    """The frames of `captures` the default kernel filter passes: what a daemon takes
    off its ring when they are sent to it."""
    return run_pipeline(list(captures), bpf_filter=DEFAULT_FILTER).pipeline.stats.packets


def run_live(tmp: Path, wire: Wire, workers: int, backend: str) -> tuple[list[str], str]:
    sensor = SensorProcess(wire.b, write_config(tmp, wire, workers, backend=backend))
    sensor.wait_for("READY=1")
    wire.replay(*CAPTURES)
    wire.wait_captured(captured(*CAPTURES))
    assert sensor.stop() == 0, sensor.output
    assert any("STOPPING=1" in m for m in sensor.messages)
    return alerts(tmp / "eve.json"), sensor.output


@pytest.mark.parametrize(("workers", "backend"), [(1, "libpcap"), (2, "libpcap"),
                                                   (1, "ring"), (2, "ring")])
def test_live_capture_gives_the_alerts_of_replay(tmp_path: Path, workers: int,
                                                 backend: str) -> None:
    expected = replay_alerts(tmp_path, CAPTURES)
    assert len(expected) == 20
    with Wire() as wire:
        live, log = run_live(tmp_path, wire, workers, backend)
    assert live == expected
    assert "0 dropped by the kernel" in log
    # The daemon kept per-host daily counts in its state directory; its summary counts
    # what replay's counts, host for host.
    live_summary = summary_numbers("-c", str(tmp_path / "sensor.yaml"))
    assert live_summary == summary_numbers("--db", str(tmp_path / "replay-summary.db"))
    assert live_summary[1] > 0
    if workers == 2:        # both workers had a share of the link
        shares = log.split("per worker: ")[1].split(")")[0].split(", ")
        assert len(shares) == 2 and all(int(s.replace(",", "")) > 0 for s in shares), log


def test_sighup_reload_picks_up_a_new_indicator(tmp_path: Path) -> None:
    rules_dir = tmp_path / "rules"
    shutil.copytree(RULES.parent, rules_dir)
    domains = rules_dir / "lists" / "ncsc-2022-domains.txt"
    query = ("sendp(Ether(dst='02:00:00:00:00:02')/IP(src='192.168.10.77', dst='192.168.10.1')"
             "/UDP(sport=40000, dport=53)/DNS(id={id}, rd=1, qd=DNSQR(qname="
             "'fresh-bad.example')), iface=iface, verbose=False)")
    with Wire() as wire:
        config = write_config(tmp_path, wire, rules=rules_dir / "rules.yaml")
        sensor = SensorProcess(wire.b, config)
        sensor.wait_for("READY=1")
        wire.send_scapy(query.format(id=1))
        wire.wait_captured(1)                   # seen before the name is listed
        domains.write_text(domains.read_text() + "\nfresh-bad.example\n")
        sensor.signal(signal.SIGHUP)
        sensor.wait_log("rules reloaded")
        wire.send_scapy(query.format(id=2))
        wire.wait_captured(2)
        assert sensor.stop() == 0, sensor.output
    hits = [json.loads(a) for a in alerts(tmp_path / "eve.json")]
    assert [(h["src_ip"], h["madoc"]["indicator"]) for h in hits] == [
        ("192.168.10.77", "fresh-bad.example")]
    dns = [json.loads(line) for line in (tmp_path / "eve.json").read_text().splitlines()
           if '"event_type":"dns"' in line]
    assert [d["dns"]["id"] for d in dns] == [1, 2]     # the first query was seen, not listed


def spooled(spool: Path) -> tuple[int, int]:
    """(batches, alerts) waiting in a spool file."""
    with sqlite3.connect(spool) as db:
        bodies = [row[0] for row in db.execute("SELECT body FROM batch")]
    return len(bodies), sum(len(decode(body)["alerts"]) for body in bodies)


def test_sigterm_spools_every_event_and_the_next_start_delivers(tmp_path: Path) -> None:
    expected = run_pipeline(CAPTURES, [RULES], bpf_filter=DEFAULT_FILTER)
    with Wire() as wire:
        collector = Collector(tmp_path / "collector")
        port = collector.port       # free in namespace b: nothing else listens there
        token = tmp_path / "sensor.token"
        token.write_text(collector.sensor_token("gw1") + "\n")
        uplink = (f"collector: {{url: 'http://127.0.0.1:{port}', token_file: {token}, "
                  f"retry_max: 0.5, batch_seconds: 1}}\n")
        config = write_config(tmp_path, wire, collector=uplink)
        # The collector is down: everything goes to the spool, and stays there at SIGTERM.
        sensor = SensorProcess(wire.b, config)
        sensor.wait_for("READY=1")
        wire.replay(*CAPTURES)
        wire.wait_captured(captured(*CAPTURES))
        assert sensor.stop() == 0, sensor.output
        spool = tmp_path / "state" / "spool-gw1.db"
        batches, held = spooled(spool)
        assert held == len(expected.hits) == 20 and batches >= 1
        # Collector up, sensor started again with no traffic: the spool drains into it.
        with wire.inside_b():
            collector.start()
            try:
                sensor = SensorProcess(wire.b, config)
                sensor.wait_for("READY=1")
                deadline = time.monotonic() + 30
                while spooled(spool)[0] and time.monotonic() < deadline:
                    time.sleep(0.2)
                assert sensor.stop() == 0, sensor.output
                hosts = collector.hosts()
            finally:
                collector.stop()
    assert spooled(spool) == (0, 0)
    tally = {addr_text(host): count.hits
             for host, count in expected.pipeline.tally.hosts.items()}
    assert {ip: hits for ip, (hits, _, _) in hosts.items() if hits} == tally


def test_started_as_root_it_keeps_only_cap_net_raw(tmp_path: Path) -> None:
    # The service user must read the rules and write the state: a world-readable place.
    home = Path(tempfile.mkdtemp(prefix="madoc-priv-"))
    try:
        home.chmod(0o755)
        shutil.copytree(RULES.parent, home / "rules")
        for path in home.rglob("*"):
            path.chmod(0o755 if path.is_dir() else 0o644)
        with Wire() as wire:
            config = write_config(home, wire, rules=home / "rules" / "rules.yaml",
                                  user="nobody")
            sensor = SensorProcess(wire.b, config)
            sensor.wait_for("READY=1")
            status = Path(f"/proc/{sensor.process.pid}/status").read_text()
            wire.replay(CAPTURES[0])
            wire.wait_captured(captured(CAPTURES[0]))
            assert sensor.stop() == 0, sensor.output
        fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
        assert fields["Uid"].split()[:2] == ["65534", "65534"]
        assert int(fields["CapEff"], 16) == int(fields["CapPrm"], 16) == 1 << 13
        assert int(fields["CapBnd"], 16) == 1 << 13
        assert fields["NoNewPrivs"].strip() == "1"
        assert "running as nobody with CAP_NET_RAW" in sensor.output
        assert alerts(home / "eve.json")      # and it still captured and matched
    finally:
        shutil.rmtree(home, ignore_errors=True)


def test_a_second_daemon_on_the_same_state_or_eve_log_refuses_in_one_line(
        tmp_path: Path) -> None:
    """Two sensors on one host (two interfaces, or a LAN and a mirror port) each need their
    own summary, spool and EVE log: one configured onto another's is refused at start."""
    with Wire() as wire:
        first = SensorProcess(wire.b, write_config(tmp_path, wire))
        first.wait_for("READY=1")
        shared_state = tmp_path / "second"
        shared_state.mkdir()
        config = write_config(shared_state, wire)
        for change, refusal in (
                ((f"state_dir: {shared_state / 'state'}", f"state_dir: {tmp_path / 'state'}"),
                 f"the state directory {tmp_path / 'state'} is in use by another madoc-sensor"),
                ((f"eve: {shared_state / 'eve.json'}", f"eve: {tmp_path / 'eve.json'}"),
                 f"the EVE log {tmp_path / 'eve.json'} is written by another madoc-sensor")):
            config.write_text(write_config(shared_state, wire).read_text().replace(*change))
            second = SensorProcess(wire.b, config)
            assert second.process.wait(30) == 2
            assert "Traceback" not in second.output and refusal in second.output, second.output
        assert first.stop() == 0, first.output

"""Replay through the uplink into a real collector: same numbers as the replay's own
table, and exactly the same numbers when the collector or the sensor is killed."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.collector.harness import Collector
from tests.conftest import ROOT, demo_captures, planted_infected
from tests.uplink.traffic import planted, write_dns_capture

UNIT = "Sở Tài chính"


def sensor_command(collector: Collector, token_file: Path, spool: Path, captures: list[Path],
                   *extra: str) -> list[str]:
    return [sys.executable, "-m", "sensor", "replay", "--collector", collector.url,
            "--token-file", str(token_file), "--spool", str(spool), "--retry-max", "0.5",
            "--drain-timeout", "60", *extra, *map(str, captures)]


def registered(collector: Collector, tmp: Path, sensor_id: str = "gw1") -> Path:
    token_file = tmp / f"{sensor_id}.token"
    token_file.write_text(collector.sensor_token(sensor_id, UNIT) + "\n")
    return token_file


def totals(collector: Collector) -> tuple[dict, int]:
    _, doc = collector.get("/api/v1/sensors", collector.admin_token)
    return collector.hosts(), sum(s["alerts"] for s in doc["sensors"])


def batches_received(collector: Collector) -> int:
    try:
        _, doc = collector.get("/api/v1/sensors", collector.admin_token)
    except OSError:
        return -1
    return sum(s["batches"] for s in doc["sensors"])


def wait_for(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def fail_one_attempt(port: int) -> None:
    """While the collector is down, hold its port until the sensor comes to send, and
    close that connection unanswered: one failed attempt, for certain, per outage."""
    with socket.create_server(("127.0.0.1", port)) as server:
        server.settimeout(60)
        connection, _ = server.accept()
        connection.close()


def test_demo_captures_reach_the_collector_with_the_replays_numbers(tmp_path: Path) -> None:
    collector = Collector(tmp_path / "c").start()
    try:
        token_file = registered(collector, tmp_path)
        captures = demo_captures()
        result = subprocess.run(sensor_command(collector, token_file, tmp_path / "spool.db",
                                               captures), capture_output=True, text=True,
                                cwd=ROOT)
        assert result.returncode == 0, result.stderr
        assert "sending as sensor 'gw1'" in result.stderr
        expected = planted_infected()
        infected = {ip: (hits, indicators) for ip, (hits, indicators, status)
                    in collector.hosts().items() if status == "infected"}
        assert infected == expected
        again = subprocess.run(sensor_command(collector, token_file, tmp_path / "spool.db",
                                              captures), capture_output=True, text=True, cwd=ROOT)
        assert again.returncode == 0 and "already sent" in again.stderr
        assert {ip: v[:2] for ip, v in collector.hosts().items() if v[2] == "infected"} == expected
    finally:
        collector.stop()


@pytest.fixture(scope="module")
def long_capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """36 minutes of DNS from 200 hosts, 3,000 hits: about 430 batches of 5 s."""
    return write_dns_capture(tmp_path_factory.mktemp("load") / "dns.pcap", 60_000)


@pytest.fixture(scope="module")
def reference() -> tuple[dict, int]:
    """What the collector must hold once the long capture is sent, by the capture's
    making: every host infected with its hits and indicators, 3,000 hits in all."""
    hosts = {ip: (*counts, "infected") for ip, counts in planted(60_000).items()}
    assert len(hosts) == 200
    return hosts, sum(hits for hits, _, _ in hosts.values())


@pytest.mark.slow
def test_collector_killed_twice_mid_stream_counts_exactly_once(
        tmp_path: Path, long_capture: Path, reference: tuple[dict, int]) -> None:
    collector = Collector(tmp_path / "c").start()
    token_file = registered(collector, tmp_path)
    sensor = subprocess.Popen(sensor_command(collector, token_file, tmp_path / "spool.db",
                                             [long_capture], "--batch-seconds", "5"),
                              stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        for threshold in (60, 200):
            wait_for(lambda t=threshold: batches_received(collector) >= t)
            collector.kill()
            fail_one_attempt(collector.port)
            collector.start()
        _, stderr = sensor.communicate(timeout=120)
        assert sensor.returncode == 0, stderr
        failed = re.search(r"(\d+) failed attempts", stderr)
        assert failed and int(failed[1]) >= 2, stderr
        assert totals(collector) == reference
    finally:
        sensor.kill()
        collector.stop()


@pytest.mark.slow
def test_sensor_killed_mid_stream_and_restarted_counts_exactly_once(
        tmp_path: Path, long_capture: Path, reference: tuple[dict, int]) -> None:
    collector = Collector(tmp_path / "c").start()
    token_file = registered(collector, tmp_path)
    command = sensor_command(collector, token_file, tmp_path / "spool.db", [long_capture],
                             "--batch-seconds", "5")
    try:
        sensor = subprocess.Popen(command, stderr=subprocess.DEVNULL, cwd=ROOT)
        wait_for(lambda: batches_received(collector) >= 20)
        sensor.send_signal(signal.SIGKILL)
        sensor.wait()
        assert batches_received(collector) < 430           # killed mid-stream
        again = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
        assert again.returncode == 0, again.stderr
        assert "resuming a back-fill" in again.stderr
        assert totals(collector) == reference
    finally:
        collector.stop()


def test_make_demo_goes_through_an_embedded_collector() -> None:
    result = subprocess.run([sys.executable, "-m", "sensor", "demo"], capture_output=True,
                            text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "(embedded, SQLite): sensor demo-gw1" in result.stdout
    table = result.stdout.split("(embedded, SQLite)")[1]
    assert "192.168.10.37    infected     12" in table
    assert "uplink: " in result.stderr and "0 refused" in result.stderr

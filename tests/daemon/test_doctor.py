"""`madoc-sensor doctor` on a real host: in a namespace with the capture end of a veth pair
and a collector on its loopback, a good configuration passes every check; a down
interface, a missing one, a token of another sensor and a list that cannot be read
each get a FAIL line that says what to do, and exit status 1."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from tests.collector.harness import Collector
from tests.conftest import ROOT
from tests.daemon.netns import Wire, inside
from tests.daemon.test_daemon import write_config


def doctor(wire: Wire, config: Path, *extra: str) -> tuple[int, list[str], str]:
    done = subprocess.run(["ip", "netns", "exec", wire.b, sys.executable, "-m", "sensor",
                           "doctor", "-c", str(config), *extra],
                          capture_output=True, text=True, cwd=ROOT)
    return done.returncode, done.stdout.splitlines(), done.stderr


def test_doctor_passes_a_ready_host_and_names_each_problem(tmp_path: Path) -> None:
    with Wire() as wire:
        collector = Collector(tmp_path / "collector")
        token = tmp_path / "sensor.token"
        token.write_text(collector.sensor_token("gw1") + "\n")
        other = tmp_path / "other.token"
        other.write_text(collector.sensor_token("gw9") + "\n")
        uplink = f"collector: {{url: '{collector.url}', token_file: {token}}}\n"
        good = write_config(tmp_path, wire, collector=uplink)
        with inside(wire.b):
            collector.start()
        deadline = time.monotonic() + 10     # the kernel's link watch marks it up soon
        while "state UP" not in subprocess.run(
                ["ip", "-n", wire.b, "-o", "link", "show", wire.end_b], capture_output=True,
                text=True).stdout and time.monotonic() < deadline:
            time.sleep(0.1)
        try:
            status, lines, summary = doctor(wire, good)
            assert status == 0, lines
            levels = {line.split()[0] for line in lines}
            assert levels == {"ok"}, lines
            text = "\n".join(lines)
            assert "ok    kernel: AF_PACKET: packet sockets with TPACKET_V3 rings" in text
            assert f"ok    interface {wire.end_b}: up" in text
            assert "the token is sensor 'gw1' of unit 'Sở Tài chính'" in text
            assert "doctor: 0 failed" in summary and "ready to run" in summary

            bad_dir = tmp_path / "bad"
            bad_dir.mkdir()
            (bad_dir / "rules.yaml").write_text(
                "sources:\n  - {name: gone, path: missing.txt, format: domains}\n")
            bad = write_config(bad_dir, wire, rules=bad_dir / "rules.yaml", collector=(
                f"collector: {{url: '{collector.url}', token_file: {other}}}\n"))
            subprocess.run(["ip", "-n", wire.b, "link", "set", wire.end_b, "down"], check=True)
            status, lines, summary = doctor(wire, bad, "-i", wire.end_b, "-i", "nope0")
        finally:
            collector.stop()
    assert status == 1, lines
    failed = [line for line in lines if line.startswith("FAIL")]
    assert f"FAIL  interface {wire.end_b}: is down: ip link set {wire.end_b} up" in failed
    assert any(line.startswith("FAIL  interface nope0: not found (here: ") for line in failed)
    assert any("source gone" in line and "missing.txt" in line for line in failed), failed
    assert any("the token belongs to sensor 'gw9', but sensor.id is 'gw1'" in line
               for line in failed), failed
    assert len(failed) == 4 and "doctor: 4 failed" in summary

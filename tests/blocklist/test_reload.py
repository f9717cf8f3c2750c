"""Hot reload: rebuilt whole off the packet path, swapped between batches, old kept on failure."""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

from sensor.blocklist.loader import load_blocklist
from sensor.blocklist.reload import RulesReloader
from tests.conftest import proc_status

NEW_NAMES = [f"new-{n:03d}.example" for n in range(100)]


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def rules_dir(tmp_path: Path) -> Path:
    (tmp_path / "d.txt").write_text("old.example\n")
    rules = tmp_path / "rules.yaml"
    rules.write_text("sources:\n  - {name: d, path: d.txt, format: domains}\n")
    return rules


def touch_later(path: Path, text: str) -> None:
    stamp = path.stat().st_mtime_ns
    path.write_text(text)
    os.utime(path, ns=(stamp + 1_000_000_000, stamp + 1_000_000_000))


def test_changed_list_is_picked_up_at_the_next_check(tmp_path: Path) -> None:
    rules = rules_dir(tmp_path)
    clock = FakeClock()
    reloader = RulesReloader([rules], period=10, monotonic=clock)
    touch_later(tmp_path / "d.txt", "old.example\nnew.example\n")
    assert reloader.poll() is None                     # not time to look yet
    clock.now = 10
    assert reloader.poll() is None                     # change seen: building in the background
    blocklist = reloader.wait()
    assert blocklist.match_domain("new.example") is not None
    assert reloader.status.reloads == 1 and reloader.status.source_entries == {"d": 2}
    clock.now = 20
    assert reloader.poll() is None and reloader.wait() is None     # nothing changed since


def test_request_reloads_without_waiting_for_the_period(tmp_path: Path) -> None:
    rules = rules_dir(tmp_path)
    reloader = RulesReloader([rules], period=3600, monotonic=FakeClock())
    reloader.request()
    reloader.poll()
    assert reloader.wait() is not None and reloader.status.reloads == 1


def test_failed_reload_keeps_the_old_blocklist_and_says_why(tmp_path: Path) -> None:
    rules = rules_dir(tmp_path)
    clock = FakeClock()
    reloader = RulesReloader([rules], period=1, monotonic=clock)
    touch_later(tmp_path / "d.txt", "# emptied while being rewritten\n")
    clock.now = 1
    reloader.poll()
    assert reloader.wait() is None
    assert reloader.status.failures == 1
    assert reloader.status.last_error.startswith("d: no usable entries")
    touch_later(rules, "sources: [unclosed\n")
    clock.now = 2
    reloader.poll()
    assert reloader.wait() is None and "not valid YAML" in reloader.status.last_error
    assert reloader.status.reloads == 0


def dns_query_capture(path: Path, count: int) -> None:
    """`count` DNS queries, cycling through NEW_NAMES, one per source port."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for n in range(count):
        name = NEW_NAMES[n % len(NEW_NAMES)]
        qname = b"".join(bytes((len(p),)) + p.encode() for p in name.split(".")) + b"\0"
        dns = struct.pack("!HHHHHH", n & 0xFFFF, 0x0100, 1, 0, 0, 0) + qname + b"\0\1\0\1"
        udp = struct.pack("!HHHH", 10000 + n % 50000, 53, 8 + len(dns), 0) + dns  # never 5353
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                         bytes((10, 0, 0, 9)), bytes((10, 0, 0, 1))) + udp
        frame = bytes(6) + bytes(6) + b"\x08\x00" + ip
        out.append(struct.pack("<IIII", 1662944400 + n // 1000, n % 1000, len(frame),
                               len(frame)) + frame)
    path.write_bytes(b"".join(out))


def handles_sighup(pid: int) -> bool:
    return bool(int(proc_status(pid, "SigCgt"), 16) & 1)


def alerted_sequence(eve: Path) -> list[bool]:
    """For each query of a NEW_NAMES name, in processing order: did it alert?"""
    events = [json.loads(line) for line in eve.read_text().splitlines()]
    sequence = []
    for index, event in enumerate(events):
        if event["event_type"] == "dns" and event["dns"]["queries"][0]["rrname"] in NEW_NAMES:
            following = events[index + 1] if index + 1 < len(events) else {}
            sequence.append(following.get("event_type") == "alert")
    return sequence


def start_replay(tmp_path: Path, reload_period: str) -> subprocess.Popen:
    """Replay 100,000 queries of NEW_NAMES; return once the replay handles SIGHUP."""
    capture = tmp_path / "queries.pcap"
    dns_query_capture(capture, 100_000)
    process = subprocess.Popen([sys.executable, "-m", "sensor", "replay", "--rules",
                                str(tmp_path / "rules.yaml"), "--reload-period", reload_period,
                                "--eve", str(tmp_path / "eve.json"), "--no-flows", str(capture)],
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not handles_sighup(process.pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    return process


def test_sighup_mid_replay_switches_whole_lists_between_packets(tmp_path: Path) -> None:
    rules_dir(tmp_path)
    process = start_replay(tmp_path, reload_period="3600")
    (tmp_path / "d.txt").write_text("old.example\n" + "".join(f"{n}\n" for n in NEW_NAMES))
    process.send_signal(signal.SIGHUP)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    assert "rules reloaded (101 entries)" in stderr
    sequence = alerted_sequence(tmp_path / "eve.json")
    switch = sequence.index(True)
    # Before the swap no query alerts; from the swap on every one does: never half a list.
    assert switch > 0 and not any(sequence[:switch]) and all(sequence[switch:])
    assert len(sequence) == 100_000


def test_list_change_is_polled_during_a_replay(tmp_path: Path) -> None:
    rules_dir(tmp_path)
    process = start_replay(tmp_path, reload_period="0.05")
    touch_later(tmp_path / "d.txt", "old.example\n" + "".join(f"{n}\n" for n in NEW_NAMES))
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0 and "rules reloaded (101 entries)" in stderr, stderr
    sequence = alerted_sequence(tmp_path / "eve.json")
    switch = sequence.index(True)
    assert switch > 0 and all(sequence[switch:])


def test_reloaded_blocklist_equals_a_fresh_load(tmp_path: Path) -> None:
    rules = rules_dir(tmp_path)
    reloader = RulesReloader([rules], period=0, monotonic=FakeClock())
    touch_later(tmp_path / "d.txt", "a.example\n=b.example\n")
    reloader.poll()
    reloaded = reloader.wait()
    fresh, _ = load_blocklist([rules])
    for name in ("a.example", "x.a.example", "b.example", "x.b.example", "old.example"):
        assert reloaded.match_domain(name) == fresh.match_domain(name)

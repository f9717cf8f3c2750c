#!/usr/bin/env python3
"""The collector under hostile load (tests/collector/hostile.py): a sensor's back-fill of
a 60,000-packet capture (about 430 batches) alone, then again with 10,000 hostile
requests and 200 slow clients at the same collector; the back-fill's time both ways, the
hostile requests' rate and answers, and the collector's memory growth. Loopback only.

    python tests/bench/bench_hostile.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))

from tests.bench.run_bench import machine  # noqa: E402
from tests.collector.harness import Collector  # noqa: E402
from tests.collector.hostile import hostile_load  # noqa: E402
from tests.conftest import memory_kib  # noqa: E402
from tests.uplink.test_uplink_e2e import registered, sensor_command, totals  # noqa: E402
from tests.uplink.traffic import write_dns_capture  # noqa: E402


def backfill(tmp: Path, capture: Path, hostile: bool) -> None:
    collector = Collector(tmp / "c").start()
    try:
        assert collector.process is not None
        before = memory_kib(collector.process.pid)
        command = sensor_command(collector, registered(collector, tmp), tmp / "spool.db",
                                 [capture], "--batch-seconds", "5")
        started = time.monotonic()
        sensor = subprocess.Popen(command, stderr=subprocess.DEVNULL, cwd=ROOT)
        if hostile:
            statuses, seconds = hostile_load(collector.url, collector.sensor_token("rogue"))
            slow = statuses.pop("slow clients connected")
        sensor.wait(300)
        took = time.monotonic() - started
        hosts, alerts = totals(collector)
        print(f"back-fill {'under hostile load' if hostile else 'alone'}: {took:.1f} s, "
              f"{len(hosts)} hosts, {alerts} alerts stored; collector grew "
              f"{(memory_kib(collector.process.pid) - before) / 1024:.0f} MiB at its peak")
        if hostile:
            print(f"hostile: {sum(statuses.values()):,} requests in {seconds:.1f} s "
                  f"({sum(statuses.values()) / seconds:,.0f}/s) and {slow} slow clients; "
                  f"answers {dict(sorted(statuses.items()))}")
    finally:
        collector.stop()


def main() -> int:
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        capture = write_dns_capture(tmp / "dns.pcap", 60_000)
        for hostile in (False, True):
            run = tmp / ("hostile" if hostile else "alone")
            run.mkdir()
            backfill(run, capture, hostile)
    return 0


if __name__ == "__main__":
    sys.exit(main())

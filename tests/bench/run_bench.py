#!/usr/bin/env python3
"""`make bench`: packets per second of madoc-sensor replay beside tcpdump and tshark.

Makes the 1-million-packet capture and the 100,000-entry blocklist on first
use (tests/bench/make_bench_pcap.py), then runs each reader on the same file,
best of --runs, and prints wall-clock and CPU figures. CPU time (user + system
of the child) is the per-core figure: on a shared VM the wall clock also
measures page-cache misses on a 700 MB file. The replay's fixed cost (start,
imports, the blocklist from its compiled cache, the summary), measured on a
capture without packets, is subtracted from its figures.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CAPTURE = HERE / "bench-1m.pcap"
RULES = HERE / "bench-rules.yaml"
EMPTY = HERE / "bench-empty.pcap"
PACKETS = 1_000_000


def timed(command: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one run, output discarded."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


CORE_ONLY = """
import resource, sys
from pathlib import Path
from sensor.support import gcpolicy
from sensor.blocklist.loader import load_blocklist
from sensor.core.pipeline import Pipeline
from sensor.sources.pcapfile import CaptureFile
blocklist = load_blocklist([Path(sys.argv[1])])[0]
capture = CaptureFile(Path(sys.argv[2]))
batches = list(capture.batches())
pipeline = Pipeline(blocklist)
gcpolicy.settle()
before = resource.getrusage(resource.RUSAGE_SELF)
for data, records, link in batches:
    pipeline.feed_batch(data, records, link)
    pipeline.events.clear()
pipeline.finish()
after = resource.getrusage(resource.RUSAGE_SELF)
print((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
"""


def core_only_cpu() -> float:
    """CPU seconds of the pipeline alone: frames already in memory, no EVE output."""
    out = subprocess.run([sys.executable, "-c", CORE_ONLY, str(RULES), str(CAPTURE)],
                         capture_output=True, text=True, check=True, cwd=ROOT)
    return float(out.stdout)


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if not CAPTURE.exists() or not RULES.exists():
        subprocess.run([sys.executable, str(HERE / "make_bench_pcap.py")], check=True)
    sensor = [sys.executable, "-m", "sensor", "replay", "--rules", str(RULES),
              "--eve", "/dev/null", str(CAPTURE)]
    # The replay's fixed cost (interpreter, imports, the blocklist from its compiled cache,
    # the summary) is measured on a capture without packets and subtracted.
    EMPTY.write_bytes(struct.pack("=IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    fixed_cost = [*sensor[:-1], str(EMPTY)]
    readers = {"madoc-sensor replay --eve /dev/null (flows, DNS, 100k entries)": sensor,
               "tcpdump -r FILE -w /dev/null": ["tcpdump", "-r", str(CAPTURE), "-w", "/dev/null"],
               "tshark -r FILE -T fields -e dns.qry.name": ["tshark", "-r", str(CAPTURE), "-T",
                                                            "fields", "-e", "dns.qry.name"]}
    subprocess.run(["cat", str(CAPTURE)], stdout=subprocess.DEVNULL, check=True)   # warm cache
    timed(fixed_cost)                                 # fills the compiled-blocklist cache
    fixed_wall, fixed_cpu = min(timed(fixed_cost) for _ in range(args.runs))
    print(f"machine: {machine()}")
    print(f"capture: {CAPTURE.name}, {PACKETS:,} packets, {CAPTURE.stat().st_size / 1e6:,.0f} MB")
    print(f"replay of a capture without packets (start, imports, 100,000-entry blocklist "
          f"from its cache), subtracted below: {fixed_cpu:.2f} s CPU")
    print(f"{'reader':<62} {'wall s':>7} {'CPU s':>7} {'packets/s (CPU)':>16}")
    for name, command in readers.items():
        if shutil.which(command[0]) is None and command[0] != sys.executable:
            print(f"{name:<62} (not installed)")
            continue
        wall, cpu = min(timed(command) for _ in range(args.runs))
        if command is sensor:
            wall, cpu = wall - fixed_wall, cpu - fixed_cpu
        print(f"{name:<62} {wall:>7.2f} {cpu:>7.2f} {PACKETS / cpu:>16,.0f}")
    core = min(core_only_cpu() for _ in range(args.runs))
    print(f"{'pipeline alone (frames in memory, no EVE output)':<62} {'':>7} {core:>7.2f} "
          f"{PACKETS / core:>16,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

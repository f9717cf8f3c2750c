#!/usr/bin/env python3
"""`make bench`: packets per second of madoc-sensor replay beside tcpdump and tshark.

Makes the 1-million-packet capture and the 100,000-entry blocklist on first
use (tests/bench/make_bench_pcap.py), then runs each reader on the same file,
best of --runs, and prints wall-clock and CPU figures. CPU time (user + system
of the child) is the per-core figure: on a shared VM the wall clock also
measures page-cache misses on a 700 MB file. The replay's fixed cost (start,
imports, the blocklist from its compiled cache, the summary), measured on a
capture without packets, is subtracted from its figures. The replay also reads the
same capture as an ERSPAN type II mirror session delivers it (every frame inside GRE
and an ERSPAN header, `bench-1m-erspan.pcap`): what reading a tunnelled mirror costs.
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
ERSPAN = HERE / "bench-1m-erspan.pcap"
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
pipeline = Pipeline(blocklist, app=sys.argv[3] == "app")
gcpolicy.settle()
before = resource.getrusage(resource.RUSAGE_SELF)
for data, records, link in batches:
    pipeline.feed_batch(data, records, link)
    pipeline.events.clear()
pipeline.finish()
after = resource.getrusage(resource.RUSAGE_SELF)
print((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
"""


def wrap_in_erspan(source: Path, target: Path) -> None:
    """Each frame of `source` as a switch's ERSPAN type II session sends it: Ethernet,
    IPv4 (198.51.100.201 → .202), GRE with a sequence number, the ERSPAN header."""
    record = struct.Struct("=IIII")
    header = bytes.fromhex("020000000202" "020000000201" "0800")
    with source.open("rb") as src, target.open("wb") as out:
        out.write(src.read(24))
        sequence = 0
        while head := src.read(16):
            sec, usec, caplen, length = record.unpack(head)
            frame = src.read(caplen)
            sequence += 1
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 36 + length, 0, 0x4000, 64, 47, 0,
                             bytes((198, 51, 100, 201)), bytes((198, 51, 100, 202)))
            gre = struct.pack("!HHI", 0x1000, 0x88BE, sequence)
            erspan = struct.pack("!HHI", 0x1000, 100, 0)     # version 1 (type II), session 100
            wrapped = header + ip + gre + erspan
            out.write(record.pack(sec, usec, caplen + len(wrapped), length + len(wrapped)))
            out.write(wrapped + frame)


def core_only_cpu(app: bool = True) -> float:
    """CPU seconds of the pipeline alone: frames already in memory, no EVE output
    (`app`: names inside connections read)."""
    out = subprocess.run([sys.executable, "-c", CORE_ONLY, str(RULES), str(CAPTURE),
                          "app" if app else "no-app"],
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
    if not ERSPAN.exists() or ERSPAN.stat().st_mtime < CAPTURE.stat().st_mtime:
        wrap_in_erspan(CAPTURE, ERSPAN)
    sensor = [sys.executable, "-m", "sensor", "replay", "--rules", str(RULES),
              "--eve", "/dev/null", str(CAPTURE)]
    # The replay's fixed cost (interpreter, imports, the blocklist from its compiled cache,
    # the summary) is measured on a capture without packets and subtracted.
    EMPTY.write_bytes(struct.pack("=IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    fixed_cost = [*sensor[:-1], str(EMPTY)]
    mirrored = [*sensor[:-1], str(ERSPAN)]
    no_app = [*sensor[:-1], "--no-app", str(CAPTURE)]
    readers = {"madoc-sensor replay --eve /dev/null (flows, DNS, names, 100k entries)": sensor,
               "the same with --no-app (no TLS, QUIC or HTTP names read)": no_app,
               "the same, every frame inside ERSPAN type II (GRE)": mirrored,
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
        if command is sensor or command is mirrored or command is no_app:
            wall, cpu = wall - fixed_wall, cpu - fixed_cpu
        print(f"{name:<62} {wall:>7.2f} {cpu:>7.2f} {PACKETS / cpu:>16,.0f}")
    core = min(core_only_cpu() for _ in range(args.runs))
    print(f"{'pipeline alone (frames in memory, no EVE output)':<62} {'':>7} {core:>7.2f} "
          f"{PACKETS / core:>16,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""A worm inside the office: what a flood costs the sensor.

Makes `bench-flood.pcap` on first use: 1,000,000 TCP SYNs from spoofed internal
addresses (10.0.0.0/8) to random outside addresses and ports (a scanning worm), then
1,000,000 DNS queries for distinct random names (a DGA, or a flood of the resolver),
with one query for a listed name in the middle of each half. Then replays it through
`madoc-sensor replay` with the project's rules and reports the CPU seconds, the peak
resident memory, the flows evicted and the emergency-mode entries, and whether both
listed-name queries were alerted. Frames are packed with struct; deterministic.

Then the memory budget of what a flood fills, measured with tracemalloc in this
process: bytes per open flow (100,000 SYN flows) and the default table's total; the
map of addresses answered for listed names at its capacity, and the time to remember a
million answers past it (each one then drops the oldest); the cache of DNS names read
before, at its capacity.

With `--live` (root) the same capture is sent by tcpreplay at top speed into a veth pair
between two namespaces made for the purpose, while `madoc-sensor run` (default flow
table) captures on the other end: what it processed, the kernel's drops, its memory
growth, the evictions and emergency mode its /metrics show, and the listed names alerted.

    python tests/bench/bench_flood.py [--syns N] [--names N] [--live]
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import resource
import struct
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))

from tests.bench.make_bench_pcap import ETH_OUT, dns_query, ipv4, tcp, udp  # noqa: E402
from tests.bench.run_bench import machine  # noqa: E402

RULES = ROOT / "rules" / "rules.yaml"
LISTED = "malhost.example"
RESOLVER = bytes((10, 1, 255, 1))


def write_flood(path: Path, syns: int, names: int) -> None:
    rng = random.Random(2026)
    record = struct.Struct("=IIII")
    start = 1_700_000_000.0
    with path.open("wb") as out:
        out.write(struct.pack("=IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))

        def write(n: int, frame: bytes, per_second: int) -> None:
            ts = start + n / per_second
            sec = int(ts)
            out.write(record.pack(sec, int((ts - sec) * 1e6), len(frame), len(frame)))
            out.write(frame)

        for n in range(syns):                     # 100,000 SYNs a second
            src = bytes((10, rng.randrange(256), rng.randrange(256), rng.randrange(1, 255)))
            dst = bytes((198, 18, rng.randrange(256), rng.randrange(1, 255)))
            write(n, ETH_OUT + ipv4(src, dst, 6, tcp(rng.randrange(1024, 65536),
                                                      rng.choice((22, 80, 443, 445, 3389)),
                                                      rng.getrandbits(32), 0, 0x02)), 100_000)
            if n == syns // 2:
                write(n, ETH_OUT + ipv4(bytes((10, 1, 0, 7)), RESOLVER, 17,
                                        udp(40000, 53, dns_query(1, LISTED))), 100_000)
        for n in range(names):                    # 50,000 queries a second after the SYNs
            host = bytes((10, 1, rng.randrange(2), rng.randrange(1, 250)))
            label = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789")
                            for _ in range(rng.randrange(8, 20)))
            name = LISTED if n == names // 2 else f"{label}.example.net"
            write(syns * 2 + n, ETH_OUT + ipv4(host, RESOLVER, 17,
                                                udp(rng.randrange(1024, 65536), 53,
                                                    dns_query(n & 0xFFFF, name))), 200_000)


def traced(fill) -> int:
    """Bytes `fill()` leaves allocated (tracemalloc)."""
    gc.collect()
    tracemalloc.start()
    kept = fill()
    size = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del kept
    return size


def memory_budget() -> list[str]:
    from sensor.blocklist.matcher import Provenance, _indicator
    from sensor.core.decode import dns
    from sensor.core.detect import MAX_RESOLVED, ResolvedNames
    from sensor.core.flows import FlowTable, FlowTimeouts

    rng = random.Random(7)
    flows = 100_000

    def flow_table() -> FlowTable:
        table = FlowTable(FlowTimeouts(max_flows=10 * flows))
        for n in range(flows):
            src = bytes((10, rng.randrange(256), rng.randrange(256), rng.randrange(1, 255)))
            dst = bytes((198, 18, rng.randrange(256), rng.randrange(1, 255)))
            table.update(1.0 + n / 1e5, 6, src, rng.randrange(1024, 65536), dst,
                         rng.choice((22, 80, 443, 445, 3389)), 0x02, 60, ())
        return table

    per_flow = traced(flow_table) / flows
    max_flows = FlowTimeouts().max_flows
    indicator = _indicator("malhost.example", "domain", Provenance(("ncsc",), "2022", 1))
    resolved = ResolvedNames()

    def resolved_full() -> ResolvedNames:
        for n in range(MAX_RESOLVED):
            resolved.remember(n.to_bytes(4, "big"), f"x{n}.malhost.example", indicator, 1e9)
        return resolved

    resolved_bytes = traced(resolved_full)
    started = time.process_time()
    for n in range(1_000_000):
        resolved.remember((MAX_RESOLVED + n).to_bytes(4, "big"), "y.malhost.example",
                          indicator, 1e9)
    past = time.process_time() - started

    def names_full() -> dict:
        for n in range(dns.MAX_KNOWN_NAMES):
            label = f"{n:08x}{'z' * rng.randrange(4, 40)}".encode()
            message = (struct.pack("!HHHHHH", n & 0xFFFF, 0x0100, 1, 0, 0, 0)
                       + bytes((len(label),)) + label + b"\x07example\x03net\x00\x00\x01\x00\x01")
            dns.decode_dns(message, 0, len(message))
        return dns._known_names

    names_bytes = traced(names_full)
    return [
        f"flow table: {per_flow:,.0f} bytes per open flow ({flows:,} SYN flows); the default "
        f"max_flows ({max_flows:,}) holds {per_flow * max_flows / 2**20:,.0f} MiB",
        f"addresses answered for listed names: {resolved_bytes / 2**20:,.1f} MiB at capacity "
        f"({MAX_RESOLVED:,}); 1,000,000 answers past it remembered in {past:.2f} CPU s",
        f"DNS names remembered across messages: {names_bytes / 2**20:,.1f} MiB at capacity "
        f"({dns.MAX_KNOWN_NAMES:,} names)",
    ]


def live(capture: Path) -> list[str]:
    """The capture sent at top speed into a daemon on a veth pair (see the docstring)."""
    from tests.collector.harness import free_port
    from tests.conftest import memory_kib
    from tests.daemon.netns import SensorProcess, Wire, inside, scrape
    from tests.daemon.test_daemon import write_config

    with tempfile.TemporaryDirectory() as name, Wire() as wire:
        directory = Path(name)
        port = free_port()
        config = write_config(directory, wire, rules=RULES)
        config.write_text(config.read_text() + f"metrics: {{listen: '127.0.0.1:{port}'}}\n")
        sensor = SensorProcess(wire.b, config)
        sensor.wait_for("READY=1")
        before = memory_kib(sensor.process.pid, "VmRSS")
        sent = wire.replay(capture)
        time.sleep(3)
        with inside(wire.b):
            samples = scrape(f"http://127.0.0.1:{port}/metrics")
        peak = memory_kib(sensor.process.pid, "VmHWM")
        running = sensor.process.poll() is None
        sensor.stop()
        alerts = [json.loads(line) for line in (directory / "eve.json").read_text().splitlines()]
    rate = [line.strip() for line in sent.splitlines() if "Rated:" in line]
    drops = sum(v for (name, _), v in samples.items()
                if name == "madoc_kernel_dropped_packets_total")
    listed = sum(a["madoc"]["indicator"] == LISTED for a in alerts
                 if a["event_type"] == "alert")
    return [f"live: tcpreplay {rate[0] if rate else sent.strip()[:80]}",
            f"live: daemon {'still running' if running else 'DIED'}; processed "
            f"{samples['madoc_captured_packets_total', ()]:,.0f}, kernel drops {drops:,.0f}; "
            f"grew {(peak - before) / 1024:.0f} MiB at its peak; evictions "
            f"{samples['madoc_flow_table_evictions_total', ()]:,.0f}, emergency mode entered "
            f"{samples['madoc_flow_table_emergencies_total', ()]:.0f}; listed-name queries "
            f"alerted: {listed} of 2"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--syns", type=int, default=1_000_000)
    parser.add_argument("--names", type=int, default=1_000_000)
    parser.add_argument("--live", action="store_true",
                        help="also send it into a live daemon on a veth pair (root)")
    args = parser.parse_args()
    capture = HERE / f"bench-flood-{args.syns}-{args.names}.pcap"
    if not capture.exists():
        write_flood(capture, args.syns, args.names)
    eve = HERE / "bench-flood-eve.json"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "sensor", "replay", "--rules", str(RULES),
                             "--no-flows", "--no-dns", "--eve", str(eve), str(capture)],
                            capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    alerts = [json.loads(line) for line in eve.read_text().splitlines()]
    listed = sum(a["madoc"]["indicator"] == LISTED for a in alerts)
    summary = [line for line in result.stderr.splitlines()
               if line.startswith(("packets", "files", "flows", "emergency"))]
    print(f"machine: {machine()}")
    print(f"capture: {capture.name}, {args.syns:,} SYNs from spoofed internal addresses, "
          f"{args.names:,} queries for distinct names")
    print(f"replay: exit {result.returncode}, {cpu:.1f} CPU s ({wall:.1f} s wall), peak RSS "
          f"{after.ru_maxrss / 1024:.0f} MiB; listed-name queries alerted: {listed} of 2")
    print("\n".join(summary))
    print("\n".join(memory_budget()))
    eve.unlink()
    if args.live:
        print("\n".join(live(capture)))
    return 0 if result.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

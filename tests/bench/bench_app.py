#!/usr/bin/env python3
"""`make bench`: what reading names inside connections costs.

- CPU: the pipeline alone (frames in memory, as run_bench.py's last line) on the bench
  capture, with names read and without (`--no-app`), best of --runs.
- Memory: 100,000 TCP flows each holding the first segment of a ClientHello too long
  for one segment (a post-quantum key share's size), waiting for the rest: the
  resident memory and the Python allocations (tracemalloc) they add, per flow, beside
  the same flows without a waiting ClientHello.
- The kernel filter: the share of the bench capture's packets that the `default`
  filter passes to Python.
- What cannot be saved: the names the capture holds, what deriving one QUIC
  connection's Initial keys through the `cryptography` package costs (every connection
  has its own keys) and what reading one TLS ClientHello costs at best, as shares of
  the `--no-app` CPU.
"""

from __future__ import annotations

import argparse
import struct
import subprocess
import sys
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))

from sensor.config import DEFAULT_FILTER  # noqa: E402
from sensor.core.decode.link import ethernet  # noqa: E402
from sensor.core.decode.quic import (  # noqa: E402
    VERSION_1,
    VERSIONS,
    InitialKeys,
    QuicInitials,
)
from sensor.core.decode.tls import client_hello  # noqa: E402
from sensor.core.pipeline import FRAME_RECORD, Pipeline  # noqa: E402
from sensor.sources.pcapfile import CaptureFile  # noqa: E402
from tests.bench.make_bench_pcap import PCAPS, client_payload  # noqa: E402
from tests.bench.run_bench import CAPTURE, core_only_cpu  # noqa: E402
from tests.conftest import memory_kib  # noqa: E402

FLOWS = 100_000


def segment(src: bytes, sport: int, flags: int, seq: int, payload: bytes = b"") -> bytes:
    tcp = struct.pack("!HHIIBBHHH", sport, 443, seq, 0, 0x50, flags, 64240, 0, 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0x4000, 64, 6, 0, src,
                     bytes((203, 0, 113, 7)))
    return bytes.fromhex("020000000001020000000002" "0800") + ip + tcp


def waiting_hellos(hello_first_segment: bytes | None) -> tuple[int, int, int]:
    """(KiB resident, bytes allocated, flows waiting) after FLOWS flows, each a SYN and
    then, if given, the first segment of a long ClientHello."""
    pipeline = Pipeline()
    tracemalloc.start()
    before_rss, before = memory_kib("self", "VmRSS"), tracemalloc.get_traced_memory()[0]
    for n in range(FLOWS):
        src = bytes((10, 2, n >> 8 & 255, n & 255))
        sport = 20000 + n // 65536
        frames = [segment(src, sport, 0x02, 1000)]
        if hello_first_segment is not None:
            frames.append(segment(src, sport, 0x10, 1001, hello_first_segment))
        for frame in frames:
            pipeline.feed_batch(frame, FRAME_RECORD.pack(1_700_000_000, n, 0, len(frame)),
                                ethernet)
        pipeline.events.clear()
    allocated = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert pipeline.app_layer is not None
    return memory_kib("self", "VmRSS") - before_rss, allocated, len(pipeline.app_layer.waiting)


def filter_share() -> tuple[int, int]:
    kept = sum(len(records) // FRAME_RECORD.size
               for _, records, _ in CaptureFile(CAPTURE, DEFAULT_FILTER).batches())
    total = sum(len(records) // FRAME_RECORD.size for _, records, _ in CaptureFile(CAPTURE)
                .batches())
    return kept, total


def names_in_capture() -> Counter[str]:
    """Events of each kind the bench capture gives with names read."""
    pipeline, kinds = Pipeline(), Counter[str]()
    for data, records, link in CaptureFile(CAPTURE).batches():
        pipeline.feed_batch(data, records, link)
        kinds.update(type(event).__name__ for event in pipeline.events)
        pipeline.events.clear()
    return kinds


def best_us(read: Callable[[bytes], object], inputs: list[bytes], runs: int = 5) -> float:
    """CPU µs of `read` per input, best of `runs` passes over `inputs`."""
    best = float("inf")
    for _ in range(runs):
        started = time.process_time()
        for item in inputs:
            read(item)
        best = min(best, time.process_time() - started)
    return best / len(inputs) * 1e6


def floor_shares(names: Counter[str], without: float) -> None:
    """What the capture's names cost at the least, as shares of the --no-app CPU: each
    QUIC connection's Initial keys (derived through `cryptography`: every connection
    has its own), each QUIC Initial read once its keys are known, and each TLS
    ClientHello read; fingerprints already known, each measured alone (CPU caches warm)."""
    version = VERSIONS[VERSION_1]
    initial = client_payload(PCAPS / "quic" / "quic-v1.pcap", 17)
    dcid = initial[6:6 + initial[5]]
    known = {(VERSION_1, dcid): InitialKeys(version, dcid)}

    def read_initial(data: bytes) -> object:
        reader = QuicInitials()
        reader.keys.update(known)
        return reader.feed(data, 0, len(data))

    hello = client_payload(PCAPS / "tls" / "tls13-openssl.pcap", 6)
    parts = (("deriving one QUIC connection's Initial keys", names["QuicEvent"],
              best_us(lambda dcid: InitialKeys(version, dcid),
                      [n.to_bytes(8, "big") for n in range(20_000)])),
             ("reading one QUIC Initial, its keys known", names["QuicEvent"],
              best_us(read_initial, [initial] * 20_000)),
             ("reading one TLS ClientHello", names["TlsEvent"],
              best_us(lambda data: client_hello(data, 0, len(data)), [hello] * 20_000)))
    total = 0.0
    for what, count, each in parts:
        share = 100 * count * each / 1e6 / without
        total += share
        print(f"{what}: {each:.1f} µs; the capture's {count:,}: {count * each / 1e6:.3f} s, "
              f"{share:.1f} % of the --no-app CPU")
    print(f"these alone: {total:.1f} % of the --no-app CPU, before the packets carrying them "
          "are dispatched, their events made or their names matched")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if not CAPTURE.exists():
        subprocess.run([sys.executable, str(HERE / "make_bench_pcap.py")], check=True)
    with_names = min(core_only_cpu() for _ in range(args.runs))
    without = min(core_only_cpu(app=False) for _ in range(args.runs))
    print(f"pipeline alone on {CAPTURE.name}: names read {with_names:.2f} s CPU, --no-app "
          f"{without:.2f} s: reading names costs {100 * (with_names / without - 1):.1f} % more")
    names = names_in_capture()
    print(f"names read: {names['TlsEvent']:,} TLS ClientHellos, {names['QuicEvent']:,} QUIC "
          f"Initials, {names['HttpEvent']:,} HTTP requests")
    floor_shares(names, without)
    # A ClientHello of 1,900 bytes (as with an X25519MLKEM768 key share): its first
    # 1,448-byte segment waits for the rest.
    hello = b"\x16\x03\x01\x07\x67\x01\x00\x07\x63\x03\x03" + bytes(1437)
    bare_rss, bare_alloc, _ = waiting_hellos(None)
    rss, alloc, waiting = waiting_hellos(hello)
    print(f"{FLOWS:,} flows after a SYN: {bare_rss / 1024:.1f} MiB resident, "
          f"{bare_alloc / FLOWS:.0f} bytes allocated per flow")
    print(f"{FLOWS:,} flows each holding a partial ClientHello ({waiting:,} waiting): "
          f"{rss / 1024:.1f} MiB resident, {alloc / FLOWS:.0f} bytes allocated per flow, "
          f"{(alloc - bare_alloc) / FLOWS:.0f} of them for the waiting hello")
    kept, total = filter_share()
    print(f"the default kernel filter passes {kept:,} of {total:,} packets "
          f"({100 * kept / total:.1f} %) of {CAPTURE.name} to Python")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Mutated packets through the pipeline: no exception may escape, memory stays flat.

Seeds are the frames of every capture under pcaps/ (tunnels included) and
tests/captures/. Each mutant is one seed changed by one to three of: bit flips,
truncation, a 16-bit field (length, count, offset) set to an edge value, the DNS
message's name games (a pointer to itself, forward, past the end; a label length past
the end; a name of 64-byte labels), wrapping in tunnels (GRE, VXLAN, IP in IP, MPLS)
several deep, and splicing two seeds. Mutants go through the compiled pipeline (with
the project's rules) in batches, the table bounded; resident memory is sampled as it
goes and must not grow after the first tenth of the run.

    python tests/fuzz/fuzz_packets.py [--packets N] [--seconds S] [--seed N]

`make fuzz` runs ten million; the test suite runs a short pass (tests/fuzz/test_fuzz.py).
"""

from __future__ import annotations

import argparse
import random
import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))

from sensor.blocklist.loader import load_blocklist  # noqa: E402
from sensor.core.decode.link import LinkDecoder, ethernet  # noqa: E402
from sensor.core.flows import FlowTimeouts  # noqa: E402
from sensor.core.pipeline import FRAME_RECORD, Pipeline  # noqa: E402
from sensor.sources.pcapfile import CaptureError, CaptureFile  # noqa: E402
from tests.conftest import memory_kib  # noqa: E402

RULES = ROOT / "rules" / "rules.yaml"
EDGES = (0, 1, 2, 7, 8, 0x7F, 0x80, 0xFF, 0x100, 0x3FFF, 0x7FFF, 0x8000, 0xC000, 0xFFFE, 0xFFFF)
Seed = tuple[LinkDecoder, bytes]


def seeds() -> list[Seed]:
    paths = [*sorted((ROOT / "pcaps").rglob("*.pcap*")),
             *sorted((ROOT / "tests" / "captures").glob("*.pcap*"))]
    frames: list[Seed] = []
    for path in paths:
        try:
            for data, records, link in CaptureFile(path).batches():
                for _, _, off, caplen in FRAME_RECORD.iter_unpack(records):
                    frames.append((link, data[off:off + caplen]))
        except CaptureError:
            continue
    return frames


def flip(rng: random.Random, frame: bytearray) -> None:
    for _ in range(rng.randrange(1, 9)):
        frame[rng.randrange(len(frame))] ^= 1 << rng.randrange(8)


def truncate(rng: random.Random, frame: bytearray) -> None:
    del frame[rng.randrange(len(frame)):]


def edge_field(rng: random.Random, frame: bytearray) -> None:
    if len(frame) >= 2:
        at = rng.randrange(len(frame) - 1)
        value = rng.choice(EDGES + (len(frame), len(frame) - at, len(frame) + 1))
        frame[at:at + 2] = struct.pack("!H", value & 0xFFFF)


def dns_games(rng: random.Random, frame: bytearray) -> None:
    """Somewhere after the headers, a name part that points or counts wrong."""
    if len(frame) < 60:
        return
    at = rng.randrange(42, len(frame) - 2)
    game = rng.randrange(5)
    if game == 0:                                   # a pointer to itself
        frame[at:at + 2] = struct.pack("!H", 0xC000 | ((at - 42) & 0x3FFF))
    elif game == 1:                                 # a pointer forward or past the end
        frame[at:at + 2] = struct.pack("!H", 0xC000 | rng.randrange(0x3FFF))
    elif game == 2:                                 # a label running past the end
        frame[at] = 63
    elif game == 3:                                 # a long name of full labels
        frame[at:] = (b"\x3f" + b"a" * 63) * rng.randrange(1, 6)
    else:                                           # the reserved label types
        frame[at] = rng.choice((0x40, 0x80))


def wrap(rng: random.Random, frame: bytearray) -> None:
    """The frame's IP part (or the frame itself) inside one to six tunnels."""
    inner = bytes(frame[14:]) if len(frame) > 14 else bytes(frame)
    eth = bytes(frame)
    for _ in range(rng.randrange(1, 7)):
        kind = rng.randrange(4)
        if kind == 0:
            payload, proto = struct.pack("!HH", 0, 0x0800) + inner, 47
        elif kind == 1:
            vxlan = struct.pack("!BBHI", 0x08, 0, 0, 42 << 8) + eth
            payload, proto = struct.pack("!HHHH", 51000, 4789, min(8 + len(vxlan), 0xFFFF),
                                         0) + vxlan, 17
        elif kind == 2:
            payload, proto = inner, 4
        else:
            eth = eth[:12] + b"\x88\x47" + struct.pack("!I", (16 << 12) | 0x100 | 64) + eth[14:]
            continue
        inner = struct.pack("!BBHHHBBH4s4s", 0x45, 0, min(20 + len(payload), 0xFFFF), 0,
                            0x4000, 64, proto, 0, b"\xc6\x33\x64\xc9",
                            b"\xc6\x33\x64\xca") + payload
        eth = eth[:12] + b"\x08\x00" + inner
    frame[:] = eth


MUTATIONS: list[Callable[[random.Random, bytearray], None]] = [
    flip, flip, truncate, edge_field, edge_field, dns_games, wrap]


def mutant(rng: random.Random, pool: list[Seed]) -> Seed:
    link, frame = rng.choice(pool)
    data = bytearray(frame)
    if rng.random() < 0.05:                         # splice two seeds
        other = rng.choice(pool)[1]
        data[rng.randrange(len(data) + 1):] = other[rng.randrange(len(other) + 1):]
    for _ in range(rng.randrange(1, 4)):
        if data:
            rng.choice(MUTATIONS)(rng, data)
    return (ethernet if rng.random() < 0.02 else link), bytes(data)


def fuzz(packets: int, seconds: float, seed: int, say: Callable[[str], None] = print) -> dict:
    """Run; return the figures. Raises whatever escapes the pipeline."""
    rng = random.Random(seed)
    pool = seeds()
    pipeline = Pipeline(load_blocklist([RULES])[0], timeouts=FlowTimeouts(max_flows=20_000))
    record = FRAME_RECORD.pack
    started, done, samples = time.monotonic(), 0, []
    deadline = started + seconds
    while done < packets and time.monotonic() < deadline:
        by_link: dict[LinkDecoder, tuple[bytearray, bytearray]] = {}
        for n in range(2048):
            link, frame = mutant(rng, pool)
            data, records = by_link.setdefault(link, (bytearray(), bytearray()))
            ts = 1_700_000_000 + (done + n) // 1000
            records += record(ts, 0, len(data), len(frame))
            data += frame
        for link, (data, records) in by_link.items():
            pipeline.feed_batch(bytes(data), bytes(records), link)
        pipeline.events.clear()
        done += 2048
        if done % (2048 * 50) == 0:
            samples.append(memory_kib("self", "VmRSS"))
            if len(samples) % 20 == 0:
                say(f"{done:,} packets, {time.monotonic() - started:.0f} s, "
                    f"{samples[-1] / 1024:.0f} MiB")
    pipeline.finish()
    warm = samples[len(samples) // 10:] or samples or [memory_kib("self", "VmRSS")]
    return {"packets": done, "seconds": time.monotonic() - started, "seeds": len(pool),
            "rss_after_warmup_mib": warm[0] / 1024, "rss_max_mib": max(warm) / 1024,
            "malformed": sum(pipeline.malformed.values()),
            "skipped": sum(pipeline.skipped.values())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=10_000_000)
    parser.add_argument("--seconds", type=float, default=3600.0)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    result = fuzz(args.packets, args.seconds, args.seed)
    growth = result["rss_max_mib"] - result["rss_after_warmup_mib"]
    print(f"{result['packets']:,} mutated packets from {result['seeds']:,} seeds in "
          f"{result['seconds']:.0f} s ({result['packets'] / result['seconds']:,.0f}/s); no "
          f"exception; malformed {result['malformed']:,}, not analysed {result['skipped']:,}; "
          f"resident memory {result['rss_after_warmup_mib']:.0f} MiB after the first tenth, "
          f"at most {result['rss_max_mib']:.0f} MiB (+{growth:.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

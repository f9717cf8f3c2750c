"""A long DNS capture with many hits, packed with struct (fast), for uplink fault tests."""

from __future__ import annotations

import random
import struct
from collections.abc import Iterator
from pathlib import Path

from tests.bench.make_bench_pcap import ETH_OUT, dns_query, ipv4, udp

LISTED = ["malhost.example", "cdn.c2-panel.example", "botnet-vn.example",
          "x.update-flash-player.example"]
RESOLVER = bytes((192, 168, 0, 53))
START = 1_662_940_800.0          # 2022-09-12 00:00 UTC


def queries(packets: int, listed_every: int = 20, seed: int = 7) -> Iterator[tuple[bytes, str]]:
    """(host, name) of each query: 200 hosts, one query in `listed_every` for a listed
    name."""
    rng = random.Random(seed)
    hosts = [bytes((192, 168, 1 + n // 200, n % 200 + 1)) for n in range(200)]
    for n in range(packets):
        name = (rng.choice(LISTED) if n % listed_every == 0
                else f"site{rng.randrange(5000)}.example.org")
        yield rng.choice(hosts), name


def write_dns_capture(path: Path, packets: int, spacing: float = 0.036,
                      listed_every: int = 20, seed: int = 7) -> Path:
    """`packets` DNS queries (`queries`), `spacing` seconds apart."""
    with path.open("wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for n, (host, name) in enumerate(queries(packets, listed_every, seed)):
            frame = ETH_OUT + ipv4(host, RESOLVER, 17,
                                   udp(1024 + n % 60000, 53, dns_query(n & 0xFFFF, name)))
            ts = START + n * spacing
            out.write(struct.pack("<IIII", int(ts), int(ts % 1 * 1e6), len(frame), len(frame)))
            out.write(frame)
    return path


def planted(packets: int, listed_every: int = 20, seed: int = 7
            ) -> dict[str, tuple[int, int]]:
    """What the capture holds by its making: host → (queries for listed names, distinct
    listed names asked for), for each host that asked for one."""
    names: dict[str, list[str]] = {}
    for host, name in queries(packets, listed_every, seed):
        if name in LISTED:
            names.setdefault(".".join(map(str, host)), []).append(name)
    return {host: (len(asked), len(set(asked))) for host, asked in names.items()}

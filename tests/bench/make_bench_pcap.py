#!/usr/bin/env python3
"""Make the 1-million-packet benchmark capture and a 100,000-entry blocklist.

Not committed (it is about 500 MB); `make bench` makes it on first use. The
mix: 500 internal hosts; about 10% of packets are DNS (UDP query/response,
1% of names listed); TCP flows with a handshake, request, MSS-sized response
segments and FIN; UDP flows (QUIC-like). Frames are packed with struct, not
scapy, so a million take seconds. Deterministic (fixed seed).
"""

from __future__ import annotations

import argparse
import random
import struct
from pathlib import Path

HERE = Path(__file__).resolve().parent
PACKETS = 1_000_000
HOSTS = [bytes((10, 1, n // 250, n % 250 + 1)) for n in range(500)]
ETH_OUT = bytes.fromhex("020000000001" "020000000002" "0800")
ETH_IN = bytes.fromhex("020000000002" "020000000001" "0800")
RESOLVER = bytes((10, 1, 255, 1))
LISTED_DOMAINS = 60_000
LISTED_ADDRESSES = 40_000


def ipv4(src: bytes, dst: bytes, proto: int, payload: bytes) -> bytes:
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 0, 0x4000, 64, proto, 0,
                       src, dst) + payload


def udp(sport: int, dport: int, data: bytes) -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data


def tcp(sport: int, dport: int, seq: int, ack: int, flags: int, data: bytes = b"") -> bytes:
    return struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 0x50,
                       flags, 64240, 0, 0) + data


def dns_name(name: str) -> bytes:
    return b"".join(bytes((len(p),)) + p.encode() for p in name.split(".")) + b"\0"


def dns_query(qid: int, name: str) -> bytes:
    return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + dns_name(name) + b"\0\1\0\1"


def dns_response(qid: int, name: str, addr: bytes) -> bytes:
    return (struct.pack("!HHHHHH", qid, 0x8180, 1, 1, 0, 0) + dns_name(name) + b"\0\1\0\1"
            + b"\xc0\x0c\0\1\0\1\0\0\1\x2c\0\4" + addr)


def listed_domain(n: int) -> str:
    return f"c2-{n:06d}.bad{n % 97}.example"


def listed_address(n: int) -> bytes:
    return bytes((198, 18 + (n >> 16) % 2, (n >> 8) & 0xFF, n & 0xFF))


def frames(rng: random.Random):
    """Yield (ts, frame) until PACKETS frames were made."""
    ts = 1662944400.0
    count = 0
    benign = [f"site{n}.example{n % 13}.vn" for n in range(5000)]
    while count < PACKETS:
        host = rng.choice(HOSTS)
        roll = rng.random()
        ts += 0.00002
        if roll < 0.50:                                     # a DNS exchange: 2 packets
            qid, port = rng.randrange(65536), rng.randrange(1024, 65535)
            name = (listed_domain(rng.randrange(LISTED_DOMAINS)) if rng.random() < 0.01
                    else rng.choice(benign))
            addr = bytes((192, 0, 2, rng.randrange(256)))  # servers in flows are elsewhere
            yield ts, ETH_OUT + ipv4(host, RESOLVER, 17, udp(port, 53, dns_query(qid, name)))
            yield ts + 0.01, ETH_IN + ipv4(RESOLVER, host, 17,
                                           udp(53, port, dns_response(qid, name, addr)))
            count += 2
        elif roll < 0.80:                                   # a TCP flow
            server = (listed_address(rng.randrange(LISTED_ADDRESSES)) if rng.random() < 0.002
                      else bytes((203, 0, 113, rng.randrange(256))))
            sport = rng.randrange(1024, 65535)
            seq, sseq = rng.randrange(2**32), rng.randrange(2**32)
            segments = rng.choice((2, 4, 8, 16, 32))
            out = [(ETH_OUT, host, server, tcp(sport, 443, seq, 0, 0x02)),
                   (ETH_IN, server, host, tcp(443, sport, sseq, seq + 1, 0x12)),
                   (ETH_OUT, host, server, tcp(sport, 443, seq + 1, sseq + 1, 0x10)),
                   (ETH_OUT, host, server, tcp(sport, 443, seq + 1, sseq + 1, 0x18, b"q" * 300))]
            for i in range(segments):
                out.append((ETH_IN, server, host,
                            tcp(443, sport, sseq + 1 + i * 1448, seq + 301, 0x10, b"r" * 1448)))
                if i % 2:
                    out.append((ETH_OUT, host, server, tcp(sport, 443, seq + 301,
                                                           sseq + 1 + (i + 1) * 1448, 0x10)))
            out += [(ETH_OUT, host, server, tcp(sport, 443, seq + 301, sseq, 0x11)),
                    (ETH_IN, server, host, tcp(443, sport, sseq, seq + 302, 0x11))]
            for eth, src, dst, segment in out:
                ts += 0.00002
                yield ts, eth + ipv4(src, dst, 6, segment)
            count += len(out)
        else:                                               # a UDP flow
            server = bytes((198, 51, 100, rng.randrange(256)))
            sport = rng.randrange(1024, 65535)
            for i in range(rng.choice((2, 4, 10))):
                ts += 0.00002
                if i % 2:
                    yield ts, ETH_IN + ipv4(server, host, 17, udp(443, sport, b"u" * 1200))
                else:
                    yield ts, ETH_OUT + ipv4(host, server, 17, udp(sport, 443, b"u" * 300))
                count += 1


def write_capture(path: Path, rng: random.Random) -> int:
    written = 0
    with path.open("wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for ts, frame in frames(rng):
            if written == PACKETS:
                break
            sec = int(ts)
            out.write(struct.pack("<IIII", sec, int((ts - sec) * 1e6), len(frame), len(frame)))
            out.write(frame)
            written += 1
    return written


def write_rules(directory: Path) -> Path:
    (directory / "bench-domains.txt").write_text(
        "".join(listed_domain(n) + "\n" for n in range(LISTED_DOMAINS)))
    (directory / "bench-ips.txt").write_text(
        "".join(".".join(map(str, listed_address(n))) + "\n" for n in range(LISTED_ADDRESSES)))
    rules = directory / "bench-rules.yaml"
    rules.write_text("sources:\n"
                     "  - {name: bench-domains, path: bench-domains.txt, format: domains}\n"
                     "  - {name: bench-ips, path: bench-ips.txt, format: ips}\n")
    return rules


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "bench-1m.pcap")
    args = parser.parse_args()
    rng = random.Random(1)
    print(f"{args.out}: {write_capture(args.out, rng):,} packets")
    print(f"{write_rules(args.out.parent)}: {LISTED_DOMAINS + LISTED_ADDRESSES:,} entries")


if __name__ == "__main__":
    main()

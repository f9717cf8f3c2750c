#!/usr/bin/env python3
"""Make the 1-million-packet benchmark capture and a 100,000-entry blocklist.

Not committed (it is about 500 MB); `make bench` makes it on first use. The
mix: 500 internal hosts; about 10% of packets are DNS (UDP query/response,
1% of names listed); TCP flows to port 443 with a handshake, the client's first
data, MSS-sized response segments and FIN, where the first data is a real TLS 1.3
ClientHello for 70% of flows, an HTTP request for 10% and other bytes for the rest;
UDP flows to port 443, half of them QUIC (a real version 1 Initial, then
short-header packets), half other datagrams. The ClientHello and the Initial come
from the captures in pcaps/ (pcaps/capture_apps.py). Frames are packed with struct,
not scapy, so a million take seconds. Deterministic (fixed seed).
"""

from __future__ import annotations

import argparse
import random
import struct
from pathlib import Path

HERE = Path(__file__).resolve().parent
PCAPS = HERE.parent.parent / "pcaps"
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


def client_payload(path: Path, proto: int) -> bytes:
    """The first TCP or UDP payload the client (10.77.0.10) sends in a capture."""
    data = path.read_bytes()
    at = 24
    while at < len(data):
        caplen = struct.unpack_from("<I", data, at + 8)[0]
        frame = data[at + 16:at + 16 + caplen]
        at += 16 + caplen
        if frame[23] != proto or frame[26:30] != bytes((10, 77, 0, 10)):
            continue
        start = 34 + (8 if proto == 17 else (frame[46] >> 4) * 4)
        if len(frame) > start:
            return frame[start:]
    raise ValueError(f"no client payload in {path}")


def frames(rng: random.Random):
    """Yield (ts, frame) until PACKETS frames were made."""
    ts = 1662944400.0
    count = 0
    benign = [f"site{n}.example{n % 13}.vn" for n in range(5000)]
    hello = client_payload(PCAPS / "tls" / "tls13-openssl.pcap", 6)
    initial = client_payload(PCAPS / "quic" / "quic-v1.pcap", 17)
    requests = [f"GET /news/{n}.html HTTP/1.1\r\nHost: {name}\r\nUser-Agent: Mozilla/5.0\r\n"
                "Accept: */*\r\n\r\n".encode() for n, name in enumerate(benign[:500])]
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
            kind = rng.random()
            first = hello if kind < 0.7 else rng.choice(requests) if kind < 0.8 else b"q" * 300
            sent = seq + 1 + len(first)
            out = [(ETH_OUT, host, server, tcp(sport, 443, seq, 0, 0x02)),
                   (ETH_IN, server, host, tcp(443, sport, sseq, seq + 1, 0x12)),
                   (ETH_OUT, host, server, tcp(sport, 443, seq + 1, sseq + 1, 0x10)),
                   (ETH_OUT, host, server, tcp(sport, 443, seq + 1, sseq + 1, 0x18, first))]
            for i in range(segments):
                out.append((ETH_IN, server, host,
                            tcp(443, sport, sseq + 1 + i * 1448, sent, 0x10, b"r" * 1448)))
                if i % 2:
                    out.append((ETH_OUT, host, server, tcp(sport, 443, sent,
                                                           sseq + 1 + (i + 1) * 1448, 0x10)))
            out += [(ETH_OUT, host, server, tcp(sport, 443, sent, sseq, 0x11)),
                    (ETH_IN, server, host, tcp(443, sport, sseq, sent + 1, 0x11))]
            for eth, src, dst, segment in out:
                ts += 0.00002
                yield ts, eth + ipv4(src, dst, 6, segment)
            count += len(out)
        else:                                               # a UDP flow
            server = bytes((198, 51, 100, rng.randrange(256)))
            sport = rng.randrange(1024, 65535)
            quic = rng.random() < 0.5
            for i in range(rng.choice((2, 4, 10))):
                ts += 0.00002
                if i % 2:
                    yield ts, ETH_IN + ipv4(server, host, 17, udp(443, sport, b"u" * 1200))
                else:
                    data = initial if quic and i == 0 else b"u" * 300   # "u": a short header
                    yield ts, ETH_OUT + ipv4(host, server, 17, udp(sport, 443, data))
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

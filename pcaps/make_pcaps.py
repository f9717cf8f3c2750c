#!/usr/bin/env python3
"""Make the demo captures: a small office on a campaign morning, deterministic.

An office LAN (192.168.10.0/24 and fd00:10::/64 behind a resolver at .1)
with about 50 hosts browsing ordinary sites, and three infected hosts:

- 192.168.10.23 beacons to a listed name reached through a CNAME chain
  (the address itself is not listed: the alert says which name resolved it);
- 192.168.10.37 resolves its C2 over DNS-over-TCP (two queries in one segment,
  a response split across segments) and connects to the listed address;
- fd00:10::45 resolves a listed name over IPv6 and connects to a listed /48.

Besides those: an allowlisted subdomain of a listed name (no alert), a
listed address scanning an office server (an inbound alert that does not
make the server "infected"), and a few malformed DNS packets.

Files written beside this script:
- office.pcap        Ethernet, the whole morning
- office-vlan.pcapng 802.1Q-tagged trunk capture of the afternoon beacons of .23
- gateway-sll.pcap   Linux cooked (tcpdump -i any) capture of .37's afternoon
- expected-hits.json every hit planted, per file: what replay must find

All internet addresses are documentation ranges (RFC 5737, RFC 3849).
Run: python pcaps/make_pcaps.py
"""

from __future__ import annotations

import json
import random
import struct
from pathlib import Path

from scapy.all import (
    DNS,
    DNSQR,
    DNSRR,
    IP,
    TCP,
    UDP,
    CookedLinux,
    Dot1Q,
    Ether,
    IPv6,
    Raw,
    raw,
    wrpcap,
)
from scapy.utils import PcapNgWriter

HERE = Path(__file__).resolve().parent
SEED = 2022
START = 1662944400.0          # 2022-09-12 08:00:00 +07:00
GATEWAY_MAC = "02:00:00:00:00:01"
RESOLVER4, RESOLVER6 = "192.168.10.1", "fd00:10::1"

BENIGN_SITES = {   # name → address (documentation ranges only)
    "www.haiphong.gov.vn": "198.51.100.10", "mail.haiphong.gov.vn": "198.51.100.11",
    "vnexpress.example": "198.51.100.20", "dantri.example": "198.51.100.21",
    "tuoitre.example": "198.51.100.22", "update.os-vendor.example": "198.51.100.30",
    "ocsp.ca-vendor.example": "198.51.100.31", "chat.messenger.example": "198.51.100.40",
    "video.stream.example": "198.51.100.41", "search.engine.example": "198.51.100.50",
    "maps.engine.example": "198.51.100.51", "bank.vietcom.example": "198.51.100.60",
    "dichvucong.gov.vn": "198.51.100.70", "thuvienphapluat.example": "198.51.100.71",
}
NTP_SERVER = "192.0.2.123"


class Capture:
    """Frames with their timestamps, plus the hits planted in them."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.frames: list[tuple[float, object]] = []
        self.hits: list[dict] = []

    def add(self, ts: float, frame: object) -> None:
        frame.time = ts
        self.frames.append((ts, frame))

    def expect(self, host: str, indicator: str, match: str, **extra: str) -> None:
        self.hits.append({"host": host, "indicator": indicator, "match": match, **extra})

    def sorted_frames(self) -> list:
        return [frame for _, frame in sorted(self.frames, key=lambda item: item[0])]


def mac_of(ip: str) -> str:
    digest = sum(ord(c) * (i + 1) for i, c in enumerate(ip))
    return f"02:10:{(digest >> 16) & 0xFF:02x}:{(digest >> 8) & 0xFF:02x}:{digest & 0xFF:02x}:" \
           f"{len(ip):02x}"


def ip_layer(src: str, dst: str):
    return IPv6(src=src, dst=dst) if ":" in src else IP(src=src, dst=dst)


def frame(src: str, dst: str, l4, outgoing: bool):
    host_mac = mac_of(src if outgoing else dst)
    eth = Ether(src=host_mac, dst=GATEWAY_MAC) if outgoing else Ether(src=GATEWAY_MAC, dst=host_mac)
    return eth / ip_layer(src, dst) / l4


def dns_exchange(cap: Capture, ts: float, host: str, resolver: str, query: DNS,
                 response: DNS, port: int) -> float:
    cap.add(ts, frame(host, resolver, UDP(sport=port, dport=53) / query, True))
    cap.add(ts + 0.012, frame(resolver, host, UDP(sport=53, dport=port) / response, False))
    return ts + 0.013


def a_lookup(cap: Capture, rng: random.Random, ts: float, host: str, name: str,
             answers: list, qtype: str = "A") -> float:
    qid = rng.randrange(65536)
    resolver = RESOLVER6 if ":" in host else RESOLVER4
    query = DNS(id=qid, rd=1, qd=[DNSQR(qname=name, qtype=qtype)])
    response = DNS(id=qid, qr=1, rd=1, ra=1, qd=[DNSQR(qname=name, qtype=qtype)], an=answers)
    return dns_exchange(cap, ts, host, resolver, query, response, rng.randrange(32768, 61000))


def tcp_session(cap: Capture, rng: random.Random, ts: float, client: str, server: str,
                port: int, sizes: tuple[int, int], complete: bool = True) -> float:
    """Handshake, a request and a response in MSS-sized segments, FIN both ways."""
    cport = rng.randrange(32768, 61000)
    cseq, sseq = rng.randrange(2**32), rng.randrange(2**32)

    def seg(t: float, outgoing: bool, flags: str, seq: int, ack: int, payload: bytes = b""):
        src, dst = (client, server) if outgoing else (server, client)
        sp, dp = (cport, port) if outgoing else (port, cport)
        l4 = TCP(sport=sp, dport=dp, flags=flags, seq=seq & 0xFFFFFFFF, ack=ack & 0xFFFFFFFF,
                 window=64240)
        cap.add(t, frame(src, dst, l4 / Raw(payload) if payload else l4, outgoing))

    seg(ts, True, "S", cseq, 0)
    if not complete:                                  # a dead C2: SYN retransmissions only
        seg(ts + 1.0, True, "S", cseq, 0)
        seg(ts + 3.0, True, "S", cseq, 0)
        return ts + 3.0
    rtt = 0.02 + rng.random() * 0.03
    t = ts + rtt
    seg(t, False, "SA", sseq, cseq + 1)
    seg(t + 0.0005, True, "A", cseq + 1, sseq + 1)
    cseq, sseq = cseq + 1, sseq + 1
    t += 0.001
    request, response = sizes
    seg(t, True, "PA", cseq, sseq, bytes(rng.randrange(256) for _ in range(request)))
    cseq += request
    t += rtt
    sent = 0
    while sent < response:
        chunk = min(1448, response - sent)
        seg(t, False, "A" if sent + chunk < response else "PA", sseq, cseq, b"\x17" * chunk)
        sseq += chunk
        sent += chunk
        t += 0.0004
    seg(t + 0.001, True, "A", cseq, sseq)
    seg(t + 0.05, True, "FA", cseq, sseq)
    seg(t + 0.05 + rtt, False, "FA", sseq, cseq + 1)
    seg(t + 0.051 + rtt, True, "A", cseq + 1, sseq + 1)
    return t + 0.06 + rtt


def browse(cap: Capture, rng: random.Random, start: float, hosts: list[str], minutes: int) -> None:
    names = sorted(BENIGN_SITES)
    for host in hosts:
        t = start + rng.random() * 60
        while t < start + minutes * 60:
            name = rng.choice(names)
            if ":" in host:
                server, rrtype = f"2001:db8:100::{names.index(name) + 1:x}", "AAAA"
            else:
                server, rrtype = BENIGN_SITES[name], "A"
            t = a_lookup(cap, rng, t, host, name,
                         [DNSRR(rrname=name, type=rrtype, rdata=server, ttl=300)], rrtype)
            t = tcp_session(cap, rng, t + 0.002, host, server, 443,
                            (rng.randrange(120, 500), rng.randrange(300, 3500)))
            t += rng.expovariate(1 / 240)
    for host in [h for h in hosts if ":" not in h][::5]:     # a few NTP exchanges (UDP flows)
        ntp = b"\x23" + bytes(47)
        t = start + rng.random() * 600
        cap.add(t, frame(host, NTP_SERVER, UDP(sport=123, dport=123) / Raw(ntp), True))
        cap.add(t + 0.03, frame(NTP_SERVER, host, UDP(sport=123, dport=123) / Raw(ntp), False))


def cname_beacon(cap: Capture, rng: random.Random, t: float, host: str = "192.168.10.23") -> float:
    """Host A: a harmless-looking name whose CNAME chain ends at a listed name."""
    chain = [DNSRR(rrname="static.cdn-news.example", type="CNAME", rdata="edge.cdn-news.example",
                   ttl=300),
             DNSRR(rrname="edge.cdn-news.example", type="CNAME",
                   rdata="tracker.malhost.example", ttl=300),
             DNSRR(rrname="tracker.malhost.example", type="A", rdata="203.0.113.50", ttl=120)]
    t = a_lookup(cap, rng, t, host, "static.cdn-news.example", chain)
    cap.expect(host, "malhost.example", "dns.cname", seen="tracker.malhost.example")
    t = tcp_session(cap, rng, t + 0.003, host, "203.0.113.50", 443, (310, 1200))
    cap.expect(host, "malhost.example", "flow.dest_ip", resolved_from="tracker.malhost.example")
    return t


def tcp_dns_beacon(cap: Capture, rng: random.Random, t: float,
                   host: str = "192.168.10.37") -> float:
    """Host B: two queries in one TCP segment; the responses split across segments."""
    cport = rng.randrange(32768, 61000)
    cseq, sseq = rng.randrange(2**32), rng.randrange(2**32)
    name = "ping.c2-panel.example"
    ids = [rng.randrange(65536) for _ in range(2)]
    queries = [DNS(id=ids[0], rd=1, qd=[DNSQR(qname=name, qtype="A")]),
               DNS(id=ids[1], rd=1, qd=[DNSQR(qname=name, qtype="TXT")])]
    responses = [DNS(id=ids[0], qr=1, rd=1, ra=1, qd=[DNSQR(qname=name, qtype="A")],
                     an=[DNSRR(rrname=name, type="A", rdata="203.0.113.77", ttl=60)]),
                 DNS(id=ids[1], qr=1, rd=1, ra=1, qd=[DNSQR(qname=name, qtype="TXT")],
                     an=[DNSRR(rrname=name, type="TXT", rdata="v=task;id=41", ttl=60)])]

    def framed(message: DNS) -> bytes:
        body = raw(message)
        return struct.pack("!H", len(body)) + body

    def seg(ts: float, outgoing: bool, flags: str, seq: int, ack: int, payload: bytes = b""):
        src, dst = (host, RESOLVER4) if outgoing else (RESOLVER4, host)
        sp, dp = (cport, 53) if outgoing else (53, cport)
        l4 = TCP(sport=sp, dport=dp, flags=flags, seq=seq & 0xFFFFFFFF, ack=ack & 0xFFFFFFFF)
        cap.add(ts, frame(src, dst, l4 / Raw(payload) if payload else l4, outgoing))

    seg(t, True, "S", cseq, 0)
    seg(t + 0.001, False, "SA", sseq, cseq + 1)
    seg(t + 0.0015, True, "A", cseq + 1, sseq + 1)
    cseq, sseq = cseq + 1, sseq + 1
    both = framed(queries[0]) + framed(queries[1])
    seg(t + 0.002, True, "PA", cseq, sseq, both)
    cseq += len(both)
    cap.expect(host, "c2-panel.example", "dns.query", seen=name)
    cap.expect(host, "c2-panel.example", "dns.query", seen=name)
    answer = framed(responses[0]) + framed(responses[1])
    cut = len(framed(responses[0])) + 7                  # second response split mid-header
    seg(t + 0.010, False, "PA", sseq, cseq, answer[:cut])
    seg(t + 0.011, False, "PA", sseq + cut, cseq, answer[cut:])
    sseq += len(answer)
    cap.expect(host, "203.0.113.77", "dns.answer", resolved_from=name)
    seg(t + 0.012, True, "FA", cseq, sseq)
    seg(t + 0.013, False, "FA", sseq, cseq + 1)
    seg(t + 0.014, True, "A", cseq + 1, sseq + 1)
    t = tcp_session(cap, rng, t + 0.02, host, "203.0.113.77", 8080, (180, 400))
    cap.expect(host, "203.0.113.77", "flow.dest_ip", resolved_from=name)
    return t


def ipv6_beacon(cap: Capture, rng: random.Random, t: float, host: str = "fd00:10::45") -> float:
    """Host C: AAAA for a listed name, then a connection into a listed /48."""
    name = "beacon.evil-v6.example"
    t = a_lookup(cap, rng, t, host, name,
                 [DNSRR(rrname=name, type="AAAA", rdata="2001:db8:bad::66", ttl=300)], "AAAA")
    cap.expect(host, "evil-v6.example", "dns.query", seen=name)
    cap.expect(host, "2001:db8:bad::/48", "dns.answer", resolved_from=name)
    t = tcp_session(cap, rng, t + 0.002, host, "2001:db8:bad::66", 443, (420, 2600))
    cap.expect(host, "2001:db8:bad::/48", "flow.dest_ip", resolved_from=name)
    return t


def malformed_dns(cap: Capture, rng: random.Random, t: float) -> None:
    """Packets a fuzzer or a broken stub might send: counted, never fatal."""
    host = "192.168.10.30"
    header = struct.pack("!HHHHHH", 0xBEEF, 0x0100, 1, 0, 0, 0)
    bodies = [header + b"\xc0\x0c\x00\x01\x00\x01",              # pointer to itself: a loop
              header + b"\x05short",                              # name runs off the end
              header + b"\x80bad\x00\x00\x01\x00\x01",            # reserved label type
              header[:7]]                                         # header cut short
    for body in bodies:
        cap.add(t, frame(host, RESOLVER4, UDP(sport=rng.randrange(32768, 61000), dport=53)
                         / Raw(body), True))
        t += 0.5


def office_morning(rng: random.Random) -> Capture:
    cap = Capture("office.pcap")
    hosts = [f"192.168.10.{n}" for n in range(10, 60)]
    browse(cap, rng, START, hosts, minutes=30)
    browse(cap, rng, START, [f"fd00:10::{n:x}" for n in range(0x40, 0x44)], minutes=30)
    for minute in (3, 13, 23):
        cname_beacon(cap, rng, START + minute * 60 + rng.random())
    for minute in (5, 20):
        tcp_dns_beacon(cap, rng, START + minute * 60 + rng.random())
    ipv6_beacon(cap, rng, START + 9 * 60 + rng.random())
    # A listed address scans the office file server: inbound, alerted, not "infected".
    tcp_session(cap, rng, START + 17 * 60, "203.0.113.9", "192.168.10.5", 22, (0, 0), False)
    cap.expect("192.168.10.5", "203.0.113.9", "flow.src_ip")
    # An allowlisted subdomain of a listed name: no alert.
    a_lookup(cap, rng, START + 600.5, "192.168.10.44", "safe.malhost.example",
             [DNSRR(rrname="safe.malhost.example", type="A", rdata="198.51.100.99", ttl=300)])
    malformed_dns(cap, rng, START + 700)
    return cap


def vlan_trunk(rng: random.Random) -> Capture:
    cap = Capture("office-vlan.pcapng")
    afternoon = START + 5 * 3600
    browse(cap, rng, afternoon, [f"192.168.10.{n}" for n in range(10, 16)], minutes=5)
    cname_beacon(cap, rng, afternoon + 120)
    for _, frame_ in cap.frames:                          # re-tag as seen on the trunk port
        ether = frame_
        payload = ether.payload
        ether.remove_payload()
        ether.add_payload(Dot1Q(vlan=10) / payload)
    return cap


def gateway_any(rng: random.Random) -> Capture:
    cap = Capture("gateway-sll.pcap")
    afternoon = START + 6 * 3600
    browse(cap, rng, afternoon, ["192.168.10.37", "192.168.10.38"], minutes=5)
    tcp_dns_beacon(cap, rng, afternoon + 90)
    cooked = []
    for ts, ether in cap.frames:                          # what tcpdump -i any writes
        outgoing = ether.dst == GATEWAY_MAC
        sll = CookedLinux(pkttype=4 if outgoing else 0, lladdrtype=1, lladdrlen=6,
                          src=bytes.fromhex(ether.src.replace(":", "")) + b"\0\0",
                          proto=ether.type) / ether.payload
        sll.time = ts
        cooked.append((ts, sll))
    cap.frames = cooked
    return cap


def main() -> None:
    rng = random.Random(SEED)
    captures = [office_morning(rng), vlan_trunk(rng), gateway_any(rng)]
    expected = {}
    for cap in captures:
        path = HERE / cap.name
        frames = cap.sorted_frames()
        if cap.name.endswith(".pcapng"):
            writer = PcapNgWriter(str(path))
            for packet in frames:
                writer.write(packet)
            writer.close()
        else:
            wrpcap(str(path), frames)
        expected[cap.name] = cap.hits
        print(f"{path.name}: {len(frames)} packets, {len(cap.hits)} planted hits")
    (HERE / "expected-hits.json").write_text(json.dumps(expected, indent=1) + "\n")


if __name__ == "__main__":
    main()

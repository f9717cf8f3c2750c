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
- tunnels/*.pcap     one infected host's lookup and connection as a sensor behind a
                     mirror session or an overlay sees them: in GRE (key, sequence and
                     checksum; over IPv4 and IPv6), Ethernet over GRE, ERSPAN types I, II
                     and III, VXLAN, Geneve (with an option), IPv4 and IPv6 in IPv4, an
                     MPLS label stack, an MPLS Ethernet pseudowire with its control word,
                     a PPPoE session, VXLAN inside GRE, and five IP-in-IP levels (more
                     than the sensor follows); tunnels/expected.json says what each holds

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


TUNNEL_CLIENT4, TUNNEL_RESOLVER4, TUNNEL_SERVER4 = "192.168.20.10", "192.168.20.1", "198.51.100.99"
TUNNEL_CLIENT6, TUNNEL_RESOLVER6, TUNNEL_SERVER6 = "fd00:20::10", "fd00:20::1", "2001:db8:99::1"
UNDERLAY = ("198.51.100.201", "198.51.100.202")    # the tunnel's end points
UNDERLAY6 = ("2001:db8:201::1", "2001:db8:201::2")


def infected_exchange(six: bool = False) -> list:
    """A host's lookup of a listed name and its connection to the answer, as IP packets."""
    client, resolver, server = ((TUNNEL_CLIENT6, TUNNEL_RESOLVER6, TUNNEL_SERVER6) if six
                                else (TUNNEL_CLIENT4, TUNNEL_RESOLVER4, TUNNEL_SERVER4))
    qtype, record = ("AAAA", DNSRR(rrname="malhost.example", type="AAAA", ttl=300,
                                   rdata=server)) if six else \
        ("A", DNSRR(rrname="malhost.example", type="A", ttl=300, rdata=server))
    question = DNSQR(qname="malhost.example", qtype=qtype)
    return [
        ip_layer(client, resolver) / UDP(sport=40001, dport=53) / DNS(id=7, rd=1, qd=question),
        ip_layer(resolver, client) / UDP(sport=53, dport=40001)
        / DNS(id=7, qr=1, rd=1, ra=1, qd=question, an=record),
        ip_layer(client, server) / TCP(sport=40002, dport=443, flags="S", seq=1000),
        ip_layer(server, client) / TCP(sport=443, dport=40002, flags="SA", seq=5000, ack=1001),
        ip_layer(client, server) / TCP(sport=40002, dport=443, flags="R", seq=1001),
    ]


def inner_frame(packet) -> object:
    """The inner packet as an Ethernet frame (what bridging tunnels carry)."""
    return Ether(src="02:20:00:00:00:10", dst="02:20:00:00:00:01") / packet


def underlay(payload, six: bool = False) -> object:
    src, dst = UNDERLAY6 if six else UNDERLAY
    return Ether(src="02:00:00:00:02:01", dst="02:00:00:00:02:02") / ip_layer(src, dst) / payload


def tunnel_wraps() -> dict[str, tuple]:
    """File name → (how one inner packet is wrapped, inner IPv6?, tunnel proto, depth)."""
    from scapy.contrib.erspan import ERSPAN_II, ERSPAN_III, ERSPAN_PlatformSpecific
    from scapy.contrib.geneve import GENEVE, GeneveOptions
    from scapy.contrib.mpls import MPLS
    from scapy.layers.l2 import GRE
    from scapy.layers.ppp import PPP, PPPoE
    from scapy.layers.vxlan import VXLAN

    def gre(proto, **fields):
        return GRE(proto=proto, **fields)
    return {
        "gre.pcap": (lambda p: underlay(gre(0x0800, chksum_present=1, key_present=1, key=7,
                                            seqnum_present=1, seqence_number=1) / p),
                     False, "GRE", 1),
        "gre-ipv6.pcap": (lambda p: underlay(gre(0x0800) / p, six=True), False, "GRE", 1),
        "gretap.pcap": (lambda p: underlay(gre(0x6558, key_present=1, key=9)
                                           / inner_frame(p)), False, "GRE", 1),
        "erspan-1.pcap": (lambda p: underlay(gre(0x88BE) / inner_frame(p)), False, "GRE", 1),
        "erspan-2.pcap": (lambda p: underlay(gre(0x88BE, seqnum_present=1, seqence_number=3)
                                             / ERSPAN_II(session_id=100, vlan=10)
                                             / inner_frame(p)), False, "GRE", 1),
        "erspan-3.pcap": (lambda p: underlay(gre(0x22EB, seqnum_present=1, seqence_number=3)
                                             / ERSPAN_III(session_id=101, o=1)
                                             / ERSPAN_PlatformSpecific(platf_id=3)
                                             / inner_frame(p)), False, "GRE", 1),
        "vxlan.pcap": (lambda p: underlay(UDP(sport=51000, dport=4789) / VXLAN(vni=42)
                                          / inner_frame(p)), False, "UDP", 1),
        "geneve.pcap": (lambda p: underlay(UDP(sport=51000, dport=6081) / GENEVE(
            vni=43, proto=0x6558, options=GeneveOptions(classid=0x0102, type=0x80,
                                                        data=b"\x00\x00\x00\x2a"))
            / inner_frame(p)), False, "UDP", 1),
        "ipip.pcap": (lambda p: underlay(p), False, "IPIP", 1),
        "6in4.pcap": (lambda p: underlay(p), True, "IPv6", 1),
        "mpls.pcap": (lambda p: Ether(src="02:00:00:00:03:01", dst="02:00:00:00:03:02")
                      / MPLS(label=16, s=0, ttl=64) / MPLS(label=100, s=1, ttl=64) / p,
                      False, None, 0),
        "mpls-pw.pcap": (lambda p: Ether(src="02:00:00:00:03:01", dst="02:00:00:00:03:02",
                                         type=0x8847) / MPLS(label=200, s=1, ttl=64)
                         / Raw(b"\x00\x00\x00\x05") / inner_frame(p), False, None, 0),
        "pppoe.pcap": (lambda p: Ether(src="02:00:00:00:04:01", dst="02:00:00:00:04:02")
                       / PPPoE(sessionid=0x1234) / PPP(proto=0x0021) / p, False, None, 0),
        "vxlan-in-gre.pcap": (lambda p: underlay(gre(0x0800) / IP(src="10.200.0.1",
                                                                   dst="10.200.0.2")
                                                 / UDP(sport=51000, dport=4789)
                                                 / VXLAN(vni=44) / inner_frame(p)),
                              False, "GRE", 2),
        "too-deep.pcap": (lambda p: underlay(IP(src="10.201.0.1", dst="10.201.0.2")
                                             / IP(src="10.202.0.1", dst="10.202.0.2")
                                             / IP(src="10.203.0.1", dst="10.203.0.2")
                                             / IP(src="10.204.0.1", dst="10.204.0.2") / p),
                          False, "IPIP", 5),
    }


def tunnel_captures() -> None:
    """pcaps/tunnels/: the infected exchange wrapped in each encapsulation."""
    directory = HERE / "tunnels"
    directory.mkdir(exist_ok=True)
    expected = {}
    for name, (wrap, six, proto, depth) in tunnel_wraps().items():
        frames = []
        for n, packet in enumerate(infected_exchange(six)):
            wrapped = wrap(packet)
            wrapped.time = START + 7200 + n * 0.01
            frames.append(wrapped)
        wrpcap(str(directory / name), frames)
        client = TUNNEL_CLIENT6 if six else TUNNEL_CLIENT4
        expected[name] = {"tunnel": proto, "depth": depth, "hits": [] if depth > 4 else [
            {"host": client, "match": "dns.query", "indicator": "malhost.example"},
            {"host": client, "match": "flow.dest_ip", "indicator": "malhost.example",
             "resolved_from": "malhost.example"}]}
    (directory / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")
    print(f"tunnels/: {len(expected)} captures")


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
    tunnel_captures()


if __name__ == "__main__":
    main()

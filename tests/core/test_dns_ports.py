"""DNS is told by its server's port: port 53 on either side is DNS, whatever the client's
own port (a query from 5353 to a resolver is matched like any other); mDNS is 5353 with
no 53 (both sides, or to the mDNS groups), decoded but never alerted."""

from __future__ import annotations

from pathlib import Path

from scapy.all import DNS, DNSQR, DNSRR, IP, TCP, UDP, Ether, IPv6, wrpcap

from tests.conftest import RULES, run_pipeline

CLIENT, RESOLVER, C2 = "192.168.1.10", "192.0.2.53", "203.0.113.80"
LISTED = "malhost.example"


def frames() -> list:
    eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    query = DNS(id=7, rd=1, qd=DNSQR(qname=LISTED))
    answer = DNS(id=7, qr=1, rd=1, ra=1, qd=DNSQR(qname=LISTED),
                 an=DNSRR(rrname=LISTED, type="A", ttl=300, rdata=C2))
    packets = [
        eth / IP(src=CLIENT, dst=RESOLVER) / UDP(sport=5353, dport=53) / query,
        eth / IP(src=RESOLVER, dst=CLIENT) / UDP(sport=53, dport=5353) / answer,
        eth / IP(src=CLIENT, dst=C2) / TCP(sport=40000, dport=443, flags="S"),
        eth / IP(src="192.168.1.11", dst="224.0.0.251") / UDP(sport=5353, dport=5353)
        / DNS(qd=DNSQR(qname=LISTED)),
        eth / IPv6(src="fe80::11", dst="ff02::fb") / UDP(sport=5353, dport=5353)
        / DNS(qd=DNSQR(qname=LISTED)),
    ]
    for n, packet in enumerate(packets):
        packet.time = 1_700_000_000 + n
    return packets


def test_a_query_from_port_5353_to_a_resolver_is_dns_and_mdns_is_not_alerted(
        tmp_path: Path) -> None:
    capture = tmp_path / "dns-ports.pcap"
    wrpcap(str(capture), frames())
    outcome = run_pipeline([capture], [RULES])
    kinds = [(event.endpoints.sport, event.endpoints.dport, event.mdns)
             for event in outcome.dns]
    assert kinds == [(5353, 53, False), (53, 5353, False), (5353, 5353, True),
                     (5353, 5353, True)]
    hits = [(hit.match, hit.indicator.value, hit.resolved_from) for hit in outcome.hits]
    assert hits == [("dns.query", LISTED, ""), ("flow.dest_ip", LISTED, LISTED)]

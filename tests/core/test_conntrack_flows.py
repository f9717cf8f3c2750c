"""Gateway mode's flows: conntrack NEW/DESTROY messages (encoded as the kernel sends them)
→ events → the same hits and flows the packet path gives."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether

from sensor.blocklist.loader import load_blocklist
from sensor.core.decode.link import ethernet
from sensor.core.events import DnsEvent, FlowEnd, Hit, HttpEvent
from sensor.core.pipeline import Pipeline
from sensor.sources.conntrack import parse_messages
from tests.ctnetlink_messages import DESTROY, NEW, message

HOST, PEER, LISTED, GATEWAY_WAN = "10.9.1.2", "203.0.113.9", "203.0.113.77", "198.51.100.1"


@pytest.fixture()
def pipeline(tmp_path: Path) -> Pipeline:
    (tmp_path / "d.txt").write_text("evil.example\n")
    (tmp_path / "i.txt").write_text(f"{LISTED}\n")
    (tmp_path / "rules.yaml").write_text(
        "sources:\n  - {name: d, path: d.txt, format: domains}\n"
        "  - {name: i, path: i.txt, format: ips}\n")
    return Pipeline(load_blocklist([tmp_path / "rules.yaml"])[0])


def feed(pipeline: Pipeline, ts: float, datagram: bytes) -> list:
    for event in parse_messages(datagram):
        pipeline.feed_conntrack(ts, event)
    events = pipeline.events[:]
    pipeline.events.clear()
    return events


def test_a_new_connection_to_a_listed_address_is_a_hit_and_destroy_ends_the_flow(
        pipeline: Pipeline) -> None:
    opened = feed(pipeline, 100.0, message(NEW, 7, HOST, LISTED, 40000, 443))
    assert [(h.match, h.seen, socket.inet_ntoa(h.host), h.outbound) for h in opened] == [
        ("flow.dest_ip", LISTED, HOST, True)]
    ended = feed(pipeline, 160.0, message(DESTROY, 7, HOST, LISTED, 40000, 443,
                                          counters=(6, 420, 5, 5268), status=0x20E))
    assert len(ended) == 1 and isinstance(ended[0], FlowEnd)
    flow = ended[0]
    assert (flow.flow_id, flow.first_ts, flow.last_ts) == (opened[0].flow_id, 100.0, 160.0)
    assert (flow.pkts_toserver, flow.bytes_toserver, flow.pkts_toclient, flow.bytes_toclient
            ) == (6, 420, 5, 5268)
    assert (flow.state, flow.reason, flow.alerted) == ("established", "conntrack", True)
    assert pipeline.conntrack.flows == {}


def test_a_connection_opened_before_the_sensor_is_checked_at_its_destroy(
        pipeline: Pipeline) -> None:
    events = feed(pipeline, 50.0, message(DESTROY, 9, HOST, LISTED, 40001, 53000, proto=17,
                                          counters=(1, 29, 0, 0)))
    assert [type(e) for e in events] == [Hit, FlowEnd]
    assert events[1].state == "new" and events[1].alerted


def test_destination_nat_names_the_real_server(pipeline: Pipeline) -> None:
    # A port forward: the outside initiator asked for the gateway's address; the kernel
    # rewrote it to the internal server, which is the reply direction's source.
    events = feed(pipeline, 1.0, message(NEW, 11, LISTED, GATEWAY_WAN, 5555, 8443,
                                         reply_src=HOST, reply_dst=LISTED))
    assert [(h.match, socket.inet_ntoa(h.host), h.outbound) for h in events] == [
        ("flow.src_ip", HOST, False)]
    assert socket.inet_ntoa(pipeline.conntrack.flows[11].endpoints.dst) == HOST


def test_dns_connections_are_left_to_the_captured_packets(pipeline: Pipeline) -> None:
    assert feed(pipeline, 1.0, message(NEW, 12, HOST, LISTED, 40002, 53, proto=17)) == []
    assert pipeline.conntrack.flows == {} and pipeline.stats.conntrack_events == 0


def test_a_connection_to_an_address_a_listed_name_resolved_to(pipeline: Pipeline) -> None:
    answer = (Ether() / IP(src="10.9.1.1", dst=HOST) / UDP(sport=53, dport=40003)
              / DNS(id=5, qr=1, qd=DNSQR(qname="c2.evil.example"),
                    an=DNSRR(rrname="c2.evil.example", rdata=PEER, ttl=300)))
    pipeline.feed(10.0, bytes(answer), ethernet)
    assert any(isinstance(e, DnsEvent) for e in pipeline.events)
    pipeline.events.clear()
    events = feed(pipeline, 11.0, message(NEW, 13, HOST, PEER, 40004, 8080))
    assert [(h.match, h.seen, h.resolved_from) for h in events] == [
        ("flow.dest_ip", PEER, "c2.evil.example")]


def http_request(sport: int) -> bytes:
    return bytes(Ether() / IP(src=HOST, dst=PEER) / TCP(sport=sport, dport=8080, flags="PA")
                 / b"GET /gate.php HTTP/1.1\r\nHost: c2.evil.example\r\n\r\n")


@pytest.mark.parametrize("packets_first", [False, True])
def test_names_read_from_packets_join_the_kernels_connection(tmp_path: Path,
                                                             packets_first: bool) -> None:
    """Gateway mode: an HTTP request captured on a connection conntrack reports carries
    the connection's flow id, and so does its alert, whichever came first (the daemon
    holds conntrack events back a moment, so the packets usually do); the connection's
    flow is alerted."""
    (tmp_path / "d.txt").write_text("evil.example\n")
    (tmp_path / "rules.yaml").write_text("sources:\n  - {name: d, path: d.txt, format: domains}\n")
    gateway = Pipeline(load_blocklist([tmp_path / "rules.yaml"])[0], gateway=True)
    if packets_first:
        gateway.feed(1.0, http_request(40010), ethernet)
    events = feed(gateway, 1.1, message(NEW, 21, HOST, PEER, 40010, 8080))
    if not packets_first:
        gateway.feed(1.2, http_request(40010), ethernet)
        events = feed(gateway, 1.2, b"")
    [http] = [e for e in events if isinstance(e, HttpEvent)]
    [hit] = [e for e in events if isinstance(e, Hit)]
    [ended] = feed(gateway, 2.0, message(DESTROY, 21, HOST, PEER, 40010, 8080))
    assert http.flow_id == hit.flow_id == ended.flow_id and hit.match == "http.host"
    assert ended.alerted


def test_a_connection_the_kernel_did_not_report_keeps_the_packets_flow_id(
        tmp_path: Path) -> None:
    gateway = Pipeline(gateway=True)
    gateway.feed(3.0, http_request(40011), ethernet)
    [http] = [e for e in gateway.events if isinstance(e, HttpEvent)]
    assert http.flow_id >= 1 << 62 and gateway.conntrack.flows == {}


def test_flows_still_open_at_stop_end_with_the_tables_current_counts(
        pipeline: Pipeline) -> None:
    feed(pipeline, 1.0, message(NEW, 14, HOST, PEER, 40005, 8080))
    feed(pipeline, 1.0, message(NEW, 15, HOST, PEER, 40006, 8080))
    current = {event.ct_id: event for event in parse_messages(
        message(NEW, 14, HOST, PEER, 40005, 8080, counters=(3, 180, 2, 120)))}
    pipeline.finish(5.0, current)
    ended = {e.endpoints.sport: e for e in pipeline.events}
    assert (ended[40005].reason, ended[40005].bytes_toclient) == ("end_of_input", 120)
    assert (ended[40006].reason, ended[40006].bytes_toclient) == ("end_of_input", 0)


def test_loopback_and_other_subsystems_are_not_flows() -> None:
    loopback = message(NEW, 16, "127.0.0.1", "127.0.0.1", 40007, 9571)
    other = bytearray(message(NEW, 17, HOST, PEER, 40008, 80))
    other[4:6] = (0x0200).to_bytes(2, "little")     # another nfnetlink subsystem
    assert parse_messages(loopback + bytes(other)) == []
    assert len(parse_messages(message(NEW, 18, HOST, PEER, 40009, 80) * 3)) == 3


def test_truncated_datagrams_stop_cleanly() -> None:
    whole = message(NEW, 19, HOST, PEER, 40010, 80)
    assert parse_messages(whole + whole[:30]) == parse_messages(whole)

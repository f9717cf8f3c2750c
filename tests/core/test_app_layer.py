"""The names inside connections, as the live sensor gets them: the default kernel filter
keeps every packet a name is read from (ClientHellos, the segment finishing a long one,
HTTP request heads, QUIC Initials) and drops QUIC's short-header packets; and flows
waiting for the rest of a ClientHello or request head stay within their bounds, each
bound counted when it bites."""

from __future__ import annotations

from pathlib import Path

import pytest
from scapy.all import IP, TCP, UDP, Ether, Raw, rdpcap, wrpcap

from sensor.config import DEFAULT_FILTER
from sensor.core.app_layer import FINISHED, AppLayer
from sensor.core.events import Endpoints
from sensor.core.flows import Flow
from tests.conftest import PCAPS, RULES, run_pipeline

CAPTURES = sorted([*PCAPS.glob("tls/*.pcap"), *PCAPS.glob("http/*.pcap"),
                   *PCAPS.glob("quic/*.pcap")])


def names(path: Path, bpf_filter: str | None) -> tuple[list, list, list]:
    outcome = run_pipeline([path], bpf_filter=bpf_filter)
    return ([e.hello for e in outcome.tls], [e.request for e in outcome.http],
            [e.hello for e in outcome.quic])


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_the_default_filter_keeps_every_name(path: Path) -> None:
    assert names(path, DEFAULT_FILTER) == names(path, None) != ([], [], [])


def test_the_default_filter_drops_quics_short_headers() -> None:
    for path in PCAPS.glob("quic/*.pcap"):
        kept = run_pipeline([path], bpf_filter=DEFAULT_FILTER).pipeline.stats.packets
        long_headers = run_pipeline([path], bpf_filter="udp[8] & 0x80 != 0").pipeline.stats
        assert kept == long_headers.packets < run_pipeline([path]).pipeline.stats.packets


HELLO_START = b"\x16\x03\x01\x08\x00\x01\x00\x07\xfc" + bytes(500)    # a hello of 2 KiB


def waiting_flow(number: int) -> Flow:
    ep = Endpoints(6, bytes((10, 0, number >> 8 & 255, number & 255)), 40000, b"\xcb\0q\1", 443)
    return Flow(number, ep, ep, 0.0, ())


def test_waiting_flows_are_bounded_in_number_and_bytes() -> None:
    app = AppLayer(max_flows=100, max_bytes=30_000, wait_seconds=30.0)
    problems: list[str] = []
    flows = [waiting_flow(n) for n in range(200)]
    for n, flow in enumerate(flows):
        app.tcp(1.0 + n * 0.001, flow, 1, HELLO_START, 0, len(HELLO_START), problems)
        assert len(app.waiting) <= 100 and app.waiting_bytes <= 30_000
    assert len(app.waiting) == 30_000 // len(HELLO_START)
    assert problems == ["app.waiting_limit"] * (200 - len(app.waiting))
    assert flows[0].app is FINISHED and flows[-1].app is not FINISHED


def test_a_wait_ends_after_its_time() -> None:
    app = AppLayer(wait_seconds=30.0)
    problems: list[str] = []
    first, second = waiting_flow(1), waiting_flow(2)
    app.tcp(100.0, first, 1, HELLO_START, 0, len(HELLO_START), problems)
    app.tcp(131.0, second, 1, HELLO_START, 0, len(HELLO_START), problems)
    assert problems == ["app.wait_timeout"] and list(app.waiting) == [2]
    assert first.app is FINISHED and app.waiting_bytes == len(HELLO_START)


def test_a_flow_that_is_neither_is_read_no_further() -> None:
    app, flow, problems = AppLayer(), waiting_flow(1), []
    assert app.tcp(1.0, flow, 1, b"SSH-2.0-OpenSSH_9.2\r\n", 0, 21, problems) == []
    assert flow.app is FINISHED and not app.waiting and not problems


def test_a_flow_ending_in_the_batch_of_its_clienthello_carries_its_alert(
        tmp_path: Path) -> None:
    """Names are read after the other packets of their batch, but before any flow ends:
    a connection whose ClientHello names a listed domain, closed and then ended within
    the same batch (a quiet capture: the next packet comes two minutes later), still has
    its alert, its `tls` event and a flow event marked alerted."""
    hello = next(bytes(packet[Raw])
                 for packet in rdpcap(str(PCAPS / "tls" / "tls13-openssl.pcap"))
                 if Raw in packet and packet[IP].src == "10.77.0.10")
    eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    out, back = eth / IP(src="10.0.0.5", dst="192.0.2.80"), eth / IP(src="192.0.2.80",
                                                                       dst="10.0.0.5")
    packets = [out / TCP(sport=40000, dport=443, flags="S", seq=100),
               back / TCP(sport=443, dport=40000, flags="SA", seq=900, ack=101),
               out / TCP(sport=40000, dport=443, flags="A", seq=101, ack=901),
               out / TCP(sport=40000, dport=443, flags="PA", seq=101, ack=901) / hello,
               out / TCP(sport=40000, dport=443, flags="FA", seq=101 + len(hello), ack=901),
               back / TCP(sport=443, dport=40000, flags="FA", seq=901, ack=102 + len(hello)),
               out / UDP(sport=5000, dport=9999) / b"later"]
    for n, packet in enumerate(packets):
        packet.time = 1_700_000_000 + (120 if n == len(packets) - 1 else n / 100)
    capture = tmp_path / "quiet.pcap"
    wrpcap(str(capture), packets)
    outcome = run_pipeline([capture], [RULES])
    assert [event.hello.sni for event in outcome.tls] == ["malhost.example"]
    assert [(hit.match, hit.indicator.value) for hit in outcome.hits] == [
        ("tls.sni", "malhost.example")]
    tcp_flow, = [flow for flow in outcome.flows if flow.endpoints.proto == 6]
    assert tcp_flow.alerted and tcp_flow.flow_id == outcome.tls[0].flow_id

"""Tunnels from mirror sessions and overlays: the hits inside each capture of
pcaps/tunnels/ are found on the innermost addresses, carry the outermost packet as
their tunnel, and the EVE events say so as Suricata's do; no carrier's bytes raise, and
nesting stops at four tunnels."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.all import IP, UDP, Ether, raw

from sensor.core.decode.ip import PROTO_GRE, PROTO_IPIP, decode_ip
from sensor.core.decode.link import ethernet
from sensor.core.decode.tunnel import MAX_DEPTH, TunnelPorts, carried, decapsulate
from sensor.core.events import addr_text
from sensor.core.pipeline import Pipeline
from tests.conftest import PCAPS, ROOT, RULES, examples, run_pipeline, tunnel_captures

EXPECTED = json.loads((PCAPS / "tunnels" / "expected.json").read_text())
PROTOS = {"GRE": 47, "UDP": 17, "IPIP": 4, "IPv6": 41}


# Tested on its own (test_a_real_kernel_vxlan_capture): a capture of a real kernel's
# tunnel, whose expectations are not the synthetic captures' kind.
OWN_TEST = {"vxlan-kernel.pcap"}


def test_every_tunnel_capture_is_tested() -> None:
    """A capture added under pcaps/tunnels/ without expectations fails here, rather than
    going untested."""
    names = {p.name for p in tunnel_captures()}
    assert names - OWN_TEST == set(EXPECTED) and names >= OWN_TEST


@pytest.mark.parametrize("path", [p for p in tunnel_captures() if p.name not in OWN_TEST],
                         ids=lambda p: p.name)
def test_the_hits_inside_a_tunnel_are_found_with_their_tunnel(path: Path) -> None:
    expected = EXPECTED[path.name]     # a capture without expectations: a KeyError
    outcome = run_pipeline([path], [RULES])
    hits = [{"host": addr_text(hit.host), "match": hit.match, "indicator": hit.indicator.value,
             **({"resolved_from": hit.resolved_from} if hit.resolved_from else {})}
            for hit in outcome.hits]
    assert hits == expected["hits"]
    if expected["depth"] > MAX_DEPTH:
        assert outcome.pipeline.malformed == {"tunnel.too_deep": 5}
        return
    assert not outcome.pipeline.malformed
    tunnels = {hit.tunnel for hit in outcome.hits} | {flow.tunnel for flow in outcome.flows}
    if expected["tunnel"] is None:                     # MPLS, PPPoE: links, not tunnels
        assert tunnels == {None}
        return
    (tunnel,) = tunnels
    assert (tunnel.proto, tunnel.depth) == (PROTOS[expected["tunnel"]], expected["depth"])
    assert addr_text(tunnel.src) in ("198.51.100.201", "2001:db8:201::1")


def test_a_real_kernel_vxlan_capture() -> None:
    """pcaps/tunnels/vxlan-kernel.pcap (pcaps/capture_vxlan.py): glibc's A and AAAA
    queries and a SYN sent again, inside Linux's VXLAN, with ARP in the tunnel too."""
    outcome = run_pipeline([PCAPS / "tunnels" / "vxlan-kernel.pcap"], [RULES])
    hits = sorted((hit.match, addr_text(hit.host), hit.indicator.value, hit.tunnel.depth,
                   addr_text(hit.tunnel.src), hit.tunnel.dport) for hit in outcome.hits)
    assert hits == [("dns.query", "192.168.77.10", "malhost.example", 1, "10.99.0.1", 4789)] * 2 \
        + [("flow.dest_ip", "192.168.77.10", "203.0.113.9", 1, "10.99.0.1", 4789)]
    assert outcome.pipeline.skipped["link.not_ip"] == 4          # the ARP, in and out


def eve_events(capture: Path, eve: Path) -> list[dict]:
    result = subprocess.run([sys.executable, "-m", "sensor", "replay", "--eve", str(eve),
                             str(capture)], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in eve.read_text().splitlines()]


@pytest.mark.parametrize("capture, tunnel", [
    ("vxlan-in-gre.pcap", {"src_ip": "198.51.100.201", "dest_ip": "198.51.100.202",
                           "proto": "GRE", "depth": 2}),
    ("vxlan.pcap", {"src_ip": "198.51.100.201", "dest_ip": "198.51.100.202", "proto": "UDP",
                    "depth": 1, "src_port": 51000, "dest_port": 4789}),
])
def test_eve_events_of_a_tunnelled_packet_carry_suricatas_tunnel_object(
        capture: str, tunnel: dict, tmp_path: Path) -> None:
    events = eve_events(PCAPS / "tunnels" / capture, tmp_path / "eve.json")
    alerts = [e for e in events if e["event_type"] == "alert"]
    assert len(alerts) == 2 and {e["src_ip"] for e in alerts} == {"192.168.20.10"}
    assert all(e["tunnel"] == tunnel and "vlan" not in e for e in events)
    assert {e["event_type"] for e in events} == {"alert", "dns", "flow"}


def test_tunnel_ports_are_configurable() -> None:
    """Linux's historical VXLAN port (8472) is read as VXLAN when configured so, and as
    a plain UDP flow between the tunnel's end points otherwise."""
    from scapy.layers.vxlan import VXLAN

    inner = Ether() / IP(src="192.168.20.10", dst="192.168.20.1") / UDP(sport=40001, dport=53)
    frame = raw(Ether() / IP(src="198.51.100.201", dst="198.51.100.202")
                / UDP(sport=51000, dport=8472) / VXLAN(vni=7) / inner)
    flows = {}
    for ports in (TunnelPorts(), TunnelPorts(vxlan=8472)):
        pipeline = Pipeline(tunnel_ports=ports)
        pipeline.feed(1.0, frame, ethernet)
        pipeline.finish()
        (end,) = pipeline.events
        flows[ports.vxlan] = (addr_text(end.endpoints.src), end.endpoints.dport,
                              end.tunnel and end.tunnel.dport)
    assert flows == {4789: ("198.51.100.201", 8472, None),
                     8472: ("192.168.20.10", 53, 8472)}


CARRIERS = [PROTO_IPIP, 41, PROTO_GRE, 17]


@settings(max_examples=examples(3000), deadline=None)
@given(st.sampled_from(CARRIERS), st.sampled_from([4789, 6081, 53]), st.binary(max_size=300))
def test_no_carrier_payload_raises(proto: int, dport: int, payload: bytes) -> None:
    result = carried(payload, proto, dport, 0, len(payload), TunnelPorts())
    version, l3, vlans = result
    assert isinstance(l3, str) or (version in (4, 6) and 0 <= l3 <= len(payload))


@settings(max_examples=examples(300), deadline=None)
@given(st.integers(1, 12))
def test_nesting_stops_at_four_tunnels(levels: int) -> None:
    packet = IP(src="192.168.20.10", dst="192.168.20.1") / UDP(sport=40001, dport=53)
    for level in range(levels):
        packet = IP(src=f"10.{level}.0.1", dst=f"10.{level}.0.2") / packet
    frame = raw(Ether() / packet)
    decoded = decode_ip(frame, 14, len(frame), 4)
    assert isinstance(decoded, tuple)
    result = decapsulate(frame, decoded, TunnelPorts())
    if levels > MAX_DEPTH:
        assert result == "tunnel.too_deep"
    else:
        assert not isinstance(result, str)
        inner, tunnel = result
        assert (addr_text(inner[1]), tunnel.depth, addr_text(tunnel.src)) == (
            "192.168.20.10", levels, f"10.{levels - 1}.0.1")


ETH_IP4 = b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00"
IP4 = b"\x45" + b"\x00" * 19
IP6 = b"\x60" + b"\x00" * 39
AT = 10                                     # the carrier's payload starts here
VXLAN_HEADER = b"\x08\x00\x00\x00\x00\x00\x2a\x00"


def gre_header(flags: int, protocol: int) -> bytes:
    return flags.to_bytes(2, "big") + protocol.to_bytes(2, "big")


def erspan3_header(version: int = 2, word: int = 0) -> bytes:
    return bytes([version << 4]) + b"\x00" * 9 + word.to_bytes(2, "big")


@pytest.mark.parametrize(("proto", "dport", "payload", "result"), [
    (4, 0, IP4, (4, AT, ())),
    (41, 0, IP6, (6, AT, ())),
    (4, 0, b"", (0, "tunnel.truncated", ())),
    (41, 0, b"", (0, "tunnel.truncated", ())),
    (17, 53, IP4, (0, "tunnel.other", ())),
    # GRE: flags, optional fields, then what the protocol field names
    (47, 0, gre_header(0, 0x0800) + IP4, (4, AT + 4, ())),
    (47, 0, gre_header(0, 0x86DD) + IP6, (6, AT + 4, ())),
    (47, 0, gre_header(0, 0x0800), (0, "tunnel.truncated", ())),
    (47, 0, gre_header(0, 0x0800)[:3], (0, "gre.truncated", ())),
    (47, 0, gre_header(0x0001, 0x880B), (0, "gre.version", ())),
    (47, 0, gre_header(0x4000, 0x0800) + IP4, (0, "gre.routing", ())),
    (47, 0, gre_header(0xB000, 0x0800) + b"\x00" * 12 + IP4, (4, AT + 16, ())),
    (47, 0, gre_header(0x8000, 0x0800) + b"\x00" * 4 + IP4, (4, AT + 8, ())),
    (47, 0, gre_header(0x2000, 0x0800) + b"\x00" * 2, (0, "gre.truncated", ())),
    (47, 0, gre_header(0x2000, 0x0800) + b"\x00" * 4, (0, "tunnel.truncated", ())),
    (47, 0, gre_header(0, 0x6558) + ETH_IP4 + IP4, (4, AT + 18, ())),
    (47, 0, gre_header(0, 0x8847) + b"\x00\x01\x01\x40" + IP4, (4, AT + 8, ())),
    (47, 0, gre_header(0, 0x1234) + IP4, (0, "tunnel.other", ())),
    # ERSPAN type I (no sequence number), II (one, and an 8-byte header), III
    (47, 0, gre_header(0, 0x88BE) + ETH_IP4 + IP4, (4, AT + 18, ())),
    (47, 0, gre_header(0x1000, 0x88BE) + b"\x00" * 4 + b"\x10" + b"\x00" * 7 + ETH_IP4 + IP4,
     (4, AT + 30, ())),
    (47, 0, gre_header(0x1000, 0x88BE) + b"\x00" * 4 + b"\x10" + b"\x00" * 6,
     (0, "erspan.truncated", ())),
    (47, 0, gre_header(0x1000, 0x88BE) + b"\x00" * 4 + b"\x10" + b"\x00" * 7,
     (0, "link.truncated", ())),
    (47, 0, gre_header(0x1000, 0x88BE) + b"\x00" * 4 + b"\x20" + b"\x00" * 7 + ETH_IP4 + IP4,
     (0, "erspan.bad_version", ())),
    (47, 0, gre_header(0, 0x22EB) + erspan3_header() + ETH_IP4 + IP4, (4, AT + 30, ())),
    (47, 0, gre_header(0, 0x22EB) + erspan3_header(word=1) + b"\x00" * 8 + ETH_IP4 + IP4,
     (4, AT + 38, ())),
    (47, 0, gre_header(0, 0x22EB) + erspan3_header(word=2 << 10) + IP4, (4, AT + 16, ())),
    (47, 0, gre_header(0, 0x22EB) + erspan3_header(word=2 << 10) + IP6, (6, AT + 16, ())),
    (47, 0, gre_header(0, 0x22EB) + erspan3_header(word=2 << 10) + b"\x50",
     (0, "erspan.frame_type", ())),
    (47, 0, gre_header(0, 0x22EB) + erspan3_header(word=2 << 10),
     (0, "erspan.frame_type", ())),
    (47, 0, gre_header(0, 0x22EB) + erspan3_header(word=1 << 10) + IP4,
     (0, "erspan.frame_type", ())),
    (47, 0, gre_header(0, 0x22EB) + erspan3_header()[:11], (0, "erspan.truncated", ())),
    (47, 0, gre_header(0, 0x22EB) + erspan3_header(), (0, "link.truncated", ())),
    (47, 0, gre_header(0, 0x22EB) + erspan3_header(version=1) + ETH_IP4 + IP4,
     (0, "erspan.bad_version", ())),
    # VXLAN and Geneve
    (17, 4789, VXLAN_HEADER + ETH_IP4 + IP4, (4, AT + 22, ())),
    (17, 4789, VXLAN_HEADER[:7], (0, "vxlan.truncated", ())),
    (17, 4789, VXLAN_HEADER, (0, "link.truncated", ())),
    (17, 4789, b"\x00" + VXLAN_HEADER[1:] + ETH_IP4 + IP4, (0, "vxlan.no_vni", ())),
    (17, 4789, b"\x01" + VXLAN_HEADER[1:] + ETH_IP4 + IP4, (0, "vxlan.no_vni", ())),
    (17, 6081, b"\x00\x00\x65\x58\x00\x00\x2a\x00" + ETH_IP4 + IP4, (4, AT + 22, ())),
    (17, 6081, b"\x01\x00\x65\x58\x00\x00\x2a\x00" + b"\x00" * 4 + ETH_IP4 + IP4,
     (4, AT + 26, ())),
    (17, 6081, b"\x00\x00\x08\x00\x00\x00\x2a\x00" + IP4, (4, AT + 8, ())),
    (17, 6081, b"\x01\x00\x08\x00\x00\x00\x2a\x00" + b"\x00" * 4, (0, "tunnel.truncated", ())),
    (17, 6081, b"\x01\x00\x08\x00\x00\x00\x2a\x00" + b"\x00" * 3, (0, "geneve.truncated", ())),
    (17, 6081, b"\x00\x00\x08\x00\x00\x00\x2a", (0, "geneve.truncated", ())),
    (17, 6081, b"\x00\x00\x08\x00\x00\x00\x2a\x00", (0, "tunnel.truncated", ())),
    (17, 6081, b"\x40\x00\x08\x00\x00\x00\x2a\x00" + IP4, (0, "geneve.version", ())),
])
def test_a_carrier_payload_reads_as_its_rfc_says(proto: int, dport: int, payload: bytes,
                                                 result: tuple) -> None:
    buf = b"\xee" * AT + payload + b"\x45" * 3          # the carrier's payload, inside
    assert carried(buf, proto, dport, AT, AT + len(payload), TunnelPorts()) == result


def test_a_gre_tunnel_has_no_ports_and_a_vxlan_tunnel_has_its_own() -> None:
    inner = IP(src="192.168.20.10", dst="192.168.20.1") / UDP(sport=40001, dport=53)
    for carrier, proto, ports in (
            (IP(src="10.0.0.1", dst="10.0.0.2", proto=47) / gre_header(0, 0x0800), 47,
             (0, 0)),
            (IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=5555, dport=4789) / VXLAN_HEADER
             / Ether(), 17, (5555, 4789))):
        frame = raw(Ether() / carrier / inner)
        decoded = decode_ip(frame, 14, len(frame), 4)
        assert isinstance(decoded, tuple)
        result = decapsulate(frame, decoded, TunnelPorts())
        assert not isinstance(result, str), result
        _, tunnel = result
        assert (addr_text(tunnel.src), addr_text(tunnel.dst), tunnel.sport, tunnel.dport,
                tunnel.proto, tunnel.depth) == ("10.0.0.1", "10.0.0.2", *ports, proto, 1)

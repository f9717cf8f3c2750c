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
from tests.conftest import PCAPS, ROOT, RULES, run_pipeline, tunnel_captures

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


@settings(max_examples=3000, deadline=None)
@given(st.sampled_from(CARRIERS), st.sampled_from([4789, 6081, 53]), st.binary(max_size=300))
def test_no_carrier_payload_raises(proto: int, dport: int, payload: bytes) -> None:
    result = carried(payload, proto, dport, 0, len(payload), TunnelPorts())
    version, l3, vlans = result
    assert isinstance(l3, str) or (version in (4, 6) and 0 <= l3 <= len(payload))


@settings(max_examples=300, deadline=None)
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

"""Link, IP and transport decoding: bytes in, tuples or reasons out, never an exception."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.all import (
    DNS,
    DNSQR,
    IP,
    TCP,
    UDP,
    CookedLinux,
    Dot1AD,
    Dot1Q,
    Ether,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    raw,
)

from sensor.core.decode.ip import decode_ip
from sensor.core.decode.link import LINK_DECODERS, ethernet, linux_sll
from sensor.core.pipeline import Pipeline
from tests.conftest import examples

DNS_QUERY = UDP(sport=5000, dport=53) / DNS(rd=1, qd=[DNSQR(qname="q.example")])


def decode_frame(frame: bytes, link=ethernet):
    version, l3, vlans = link(frame, 0, len(frame))
    if not version:
        return l3, vlans
    return decode_ip(frame, l3, len(frame), version), vlans


def test_ipv4_with_options_and_tcp_ports_flags_seq() -> None:
    frame = raw(Ether() / IP(src="10.0.0.1", dst="203.0.113.1", options=b"\x01\x01\x01\x00")
                / TCP(sport=1234, dport=443, flags="S", seq=99))
    decoded, _ = decode_frame(frame)
    proto, src, dst, sport, dport, flags, seq, poff, pend, ip_len, _ = decoded
    assert (proto, sport, dport, flags, seq) == (6, 1234, 443, 0x02, 99)
    assert src == bytes([10, 0, 0, 1]) and poff == pend == len(frame) and ip_len == 44


def test_qinq_and_vlan_ids_are_kept() -> None:
    frame = raw(Ether() / Dot1AD(vlan=100) / Dot1Q(vlan=20) / IP() / DNS_QUERY)
    decoded, vlans = decode_frame(frame)
    assert vlans == (100, 20) and decoded[4] == 53


def test_linux_cooked_capture() -> None:
    frame = raw(CookedLinux(proto=0x86DD) / IPv6(src="fd00::1", dst="fd00::2") / DNS_QUERY)
    decoded, _ = decode_frame(frame, linux_sll)
    assert decoded[0] == 17 and decoded[4] == 53


def test_ipv6_extension_headers_are_walked() -> None:
    frame = raw(Ether() / IPv6() / IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt() / DNS_QUERY)
    decoded, _ = decode_frame(frame)
    assert decoded[0] == 17 and decoded[4] == 53


def test_fragments_first_carries_ports_rest_counted() -> None:
    first = raw(Ether() / IPv6() / IPv6ExtHdrFragment(offset=0, m=1) / DNS_QUERY)
    later = raw(Ether() / IPv6() / IPv6ExtHdrFragment(offset=8, m=0, nh=17) / (b"x" * 16))
    assert decode_frame(first)[0][4] == 53 and decode_frame(first)[0][10] is True
    assert decode_frame(later)[0] == "ip.fragment"
    v4_later = raw(Ether() / IP(frag=3, proto=17) / (b"y" * 16))
    assert decode_frame(v4_later)[0] == "ip.fragment"


def test_malformed_reasons() -> None:
    assert decode_frame(raw(Ether() / IP())[:20])[0] == "ip.truncated"
    assert decode_frame(raw(Ether() / IP(ihl=3) / DNS_QUERY))[0] == "ip.bad_header_length"
    assert decode_frame(raw(Ether() / IP() / UDP(len=4)))[0] == "udp.bad_length"
    assert decode_frame(raw(Ether() / IP() / TCP(dataofs=2)))[0] == "tcp.bad_offset"
    assert decode_frame(raw(Ether() / IP() / TCP())[:40])[0] == "tcp.truncated"
    assert decode_frame(b"\x00" * 10)[0] == "link.truncated"
    assert decode_frame(raw(Ether(type=0x0806) / (b"\x00" * 28)))[0] == "link.not_ip"


def test_ethernet_padding_is_not_payload() -> None:
    frame = raw(Ether() / IP() / UDP(sport=1, dport=53) / b"abcd") + b"\x00" * 12
    decoded, _ = decode_frame(frame)
    assert decoded[8] - decoded[7] == 4


@settings(max_examples=examples(4000), deadline=None)
@given(st.sampled_from(sorted(LINK_DECODERS)), st.binary(max_size=200))
def test_random_frames_never_raise_through_the_pipeline(linktype: int, frame: bytes) -> None:
    pipeline = Pipeline()
    pipeline.feed(1.0, frame, LINK_DECODERS[linktype])
    assert pipeline.stats.packets == 1


SEEDS = [raw(Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / DNS_QUERY),
         raw(Ether() / IPv6() / IPv6ExtHdrHopByHop() / DNS_QUERY),
         raw(Ether() / Dot1Q(vlan=5) / IP() / TCP(sport=53, dport=999) / b"\x00\x05hello")]


@settings(max_examples=examples(4000), deadline=None)
@given(st.sampled_from(SEEDS), st.data())
def test_mutated_frames_never_raise_through_the_pipeline(seed: bytes, data: st.DataObject) -> None:
    frame = bytearray(seed)
    for _ in range(data.draw(st.integers(1, 6))):
        frame[data.draw(st.integers(0, len(frame) - 1))] = data.draw(st.integers(0, 255))
    pipeline = Pipeline()
    pipeline.feed(1.0, bytes(frame[:data.draw(st.integers(0, len(frame)))]), ethernet)
    pipeline.finish()
    assert pipeline.stats.packets == 1


def test_other_link_types() -> None:
    ip = raw(IP(src="10.0.0.1", dst="10.0.0.2") / DNS_QUERY)
    sll2 = b"\x08\x00" + b"\x00" * 18 + ip                         # protocol first (SLL2)
    null_le = (2).to_bytes(4, "little") + ip                        # BSD loopback, host order
    null_v6_be = (30).to_bytes(4, "big") + raw(IPv6() / DNS_QUERY)  # macOS AF_INET6, big-endian
    loop = (2).to_bytes(4, "big") + ip                              # OpenBSD DLT_LOOP
    ppp = b"\xff\x03\x00\x21" + ip
    for linktype, frame in ((276, sll2), (0, null_le), (0, null_v6_be), (108, loop), (9, ppp),
                            (101, ip), (228, ip)):
        decoded, _ = decode_frame(frame, LINK_DECODERS[linktype])
        assert decoded[4] == 53, linktype

"""The ctnetlink decoder against pyroute2's (the oracle) on the same bytes, and on
damaged bytes: no input raises."""

from __future__ import annotations

import ipaddress
import socket

from hypothesis import given, settings
from hypothesis import strategies as st
from pyroute2.netlink.nfnetlink.nfctsocket import nfct_msg

from sensor.core.decode.ctnetlink import decode_conntrack
from tests.conftest import examples
from tests.ctnetlink_messages import DESTROY, NEW, message


def oracle(raw: bytes) -> tuple:
    """The fields gateway mode uses, as pyroute2 decodes them."""
    msg = nfct_msg(raw)
    msg.decode()

    def side(name: str) -> tuple[int, bytes, int]:
        tup = msg.get_attr(name)
        ip, proto = tup.get_attr("CTA_TUPLE_IP"), tup.get_attr("CTA_TUPLE_PROTO")
        v4 = ip.get_attr("CTA_IP_V4_SRC")
        addr = socket.inet_pton(socket.AF_INET, v4) if v4 else socket.inet_pton(
            socket.AF_INET6, ip.get_attr("CTA_IP_V6_SRC"))
        return proto.get_attr("CTA_PROTO_NUM"), addr, proto.get_attr("CTA_PROTO_SRC_PORT")

    def counts(name: str) -> tuple[int, int]:
        attr = msg.get_attr(name)
        if attr is None:
            return 0, 0
        return attr.get_attr("CTA_COUNTERS_PACKETS"), attr.get_attr("CTA_COUNTERS_BYTES")

    stamps = msg.get_attr("CTA_TIMESTAMP")
    start = stamps.get_attr("CTA_TIMESTAMP_START") / 1e9 if stamps else None
    stop = stamps.get_attr("CTA_TIMESTAMP_STOP") / 1e9 if stamps else None
    (proto, src, sport), (_, dst, dport) = side("CTA_TUPLE_ORIG"), side("CTA_TUPLE_REPLY")
    return (msg["header"]["type"] == NEW, msg.get_attr("CTA_ID"), (proto, src, sport, dst, dport),
            *counts("CTA_COUNTERS_ORIG"), *counts("CTA_COUNTERS_REPLY"),
            msg.get_attr("CTA_STATUS"), start, stop)


addresses_v4 = st.integers(1, 2**32 - 1).map(lambda n: str(ipaddress.IPv4Address(n)))
addresses_v6 = st.integers(1, 2**128 - 1).map(lambda n: str(ipaddress.IPv6Address(n)))
ports = st.integers(1, 65535)
big = st.integers(0, 2**63 - 1)
connections = st.one_of(
    st.tuples(addresses_v4, addresses_v4, addresses_v4),
    st.tuples(addresses_v6, addresses_v6, addresses_v6)).flatmap(
    lambda peers: st.builds(
        message, st.sampled_from([NEW, DESTROY]), st.integers(0, 2**32 - 1),
        st.just(peers[0]), st.just(peers[1]), ports, ports, st.sampled_from([6, 17]),
        reply_src=st.sampled_from([peers[1], peers[2]]),
        counters=st.none() | st.tuples(big, big, big, big),
        status=st.integers(0, 2**32 - 1),
        timestamps=st.none() | st.tuples(st.integers(1, 2**62), st.integers(1, 2**62))))


@settings(max_examples=examples(300), deadline=None)
@given(connections)
def test_the_decoder_reads_what_pyroute2_reads(raw: bytes) -> None:
    (event,) = decode_conntrack(raw)
    expected = oracle(raw)
    assert (event.new, event.ct_id, tuple(event.endpoints), event.pkts_orig,
            event.bytes_orig, event.pkts_reply, event.bytes_reply, event.status,
            event.start, event.stop) == expected


@settings(max_examples=examples(500), deadline=None)
@given(st.lists(connections, min_size=1, max_size=4).map(b"".join),
       st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=8),
       st.integers(0, 10_000))
def test_damaged_datagrams_never_raise(raw: bytes, flips: list[tuple[int, int]],
                                       cut: int) -> None:
    damaged = bytearray(raw)
    for position, value in flips:
        damaged[position % len(damaged)] = value
    for event in decode_conntrack(bytes(damaged[:len(damaged) - cut % len(damaged)])):
        assert len(event.endpoints.src) in (4, 16) and len(event.endpoints.dst) in (4, 16)


@given(st.binary(max_size=600))
def test_random_bytes_never_raise(raw: bytes) -> None:
    decode_conntrack(raw)

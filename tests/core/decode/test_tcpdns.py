"""DNS over TCP: length-prefixed messages, however the segments cut them."""

from __future__ import annotations

import struct

from scapy.all import DNS, DNSQR, raw

from sensor.core.decode.tcpdns import TcpDnsStream


def framed(name: str) -> bytes:
    body = raw(DNS(id=1, rd=1, qd=[DNSQR(qname=name)]))
    return struct.pack("!H", len(body)) + body


def test_several_messages_in_one_segment() -> None:
    stream = TcpDnsStream()
    messages, problem = stream.feed(1000, framed("a.example") + framed("b.example"))
    assert len(messages) == 2 and problem is None


def test_message_split_across_segments_even_inside_the_length() -> None:
    wire = framed("split.example")
    stream = TcpDnsStream()
    assert stream.feed(5, wire[:1]) == ([], None)
    assert stream.feed(6, wire[1:9]) == ([], None)
    messages, _ = stream.feed(14, wire[9:])
    assert messages == [wire[2:]]


def test_retransmission_is_not_read_twice() -> None:
    wire = framed("again.example")
    stream = TcpDnsStream()
    stream.feed(100, wire[:10])
    assert stream.feed(100, wire[:10]) == ([], None)          # the same bytes again
    messages, _ = stream.feed(105, wire[5:])                    # overlaps the first part
    assert messages == [wire[2:]]


def test_sequence_wraps_around() -> None:
    wire = framed("wrap.example")
    stream = TcpDnsStream()
    stream.feed(0xFFFFFFFC, wire[:4])
    assert stream.feed(0, wire[4:])[0] == [wire[2:]]


def test_gap_resynchronises_and_is_reported() -> None:
    stream = TcpDnsStream()
    stream.feed(0, framed("lost.example")[:6])
    messages, problem = stream.feed(500, framed("next.example"))
    assert problem == "dns.tcp_gap" and len(messages) == 1


def test_buffer_holds_less_than_one_message_after_each_feed() -> None:
    stream = TcpDnsStream()
    wire = (b"\xff\xff" + b"\x07" * 0xFFFF) * 3        # three largest-possible messages
    found = 0
    for seq in range(0, len(wire), 60000):
        messages, _ = stream.feed(seq, wire[seq:seq + 60000])
        found += len(messages)
        assert len(stream.buffer) < 2 + 0xFFFF
    assert found == 3

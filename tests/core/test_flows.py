"""The flow table: direction, counters, TCP ends, timeouts by packet time, eviction."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from sensor.core.decode.link import ethernet
from sensor.core.events import FlowEnd
from sensor.core.flows import TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN, FlowTable, FlowTimeouts
from sensor.core.pipeline import Pipeline
from tests.conftest import examples

A, B, C = b"\x0a\x00\x00\x01", b"\xcb\x00\x71\x07", b"\x0a\x00\x00\x02"
TCP, UDP = 6, 17


def packet(table: FlowTable, ts: float, forward: bool = True, flags: int = TCP_ACK,
           proto: int = TCP, length: int = 100, client: bytes = A, cport: int = 40000):
    if forward:
        return table.update(ts, proto, client, cport, B, 443, flags, length, ())
    return table.update(ts, proto, B, 443, client, cport, flags, length, ())


def test_initiator_is_the_syn_sender_even_when_the_syn_ack_comes_first() -> None:
    table = FlowTable()
    flow, is_new, forward = packet(table, 1.0, forward=False, flags=TCP_SYN | TCP_ACK)
    assert is_new and flow.endpoints[1:3] == (A, 40000) and not forward


def test_counters_per_direction_and_fin_close() -> None:
    table = FlowTable()
    packet(table, 1.0, flags=TCP_SYN, length=60)
    packet(table, 1.1, forward=False, flags=TCP_SYN | TCP_ACK, length=60)
    packet(table, 1.2, length=500)
    packet(table, 1.3, flags=TCP_FIN | TCP_ACK, length=52)
    packet(table, 1.4, forward=False, flags=TCP_FIN | TCP_ACK, length=52)
    packet(table, 1.5, length=52)                     # the last ACK still belongs to the flow
    table.expire(10.0)
    [end] = table.ended
    assert (end.pkts_toserver, end.bytes_toserver, end.pkts_toclient, end.bytes_toclient) == \
        (4, 664, 2, 112)
    assert (end.reason, end.state, end.first_ts, end.last_ts) == ("fin", "closed", 1.0, 1.5)
    assert end.tcp_flags == TCP_SYN | TCP_ACK | TCP_FIN


def test_rst_ends_the_flow() -> None:
    table = FlowTable()
    packet(table, 1.0, flags=TCP_SYN)
    packet(table, 1.01, forward=False, flags=TCP_RST | TCP_ACK)
    table.expire(7.0)
    assert [e.reason for e in table.ended] == ["rst"]


def test_idle_timeouts_follow_packet_time_per_protocol() -> None:
    table = FlowTable(FlowTimeouts(tcp_idle=300, udp_idle=60))
    packet(table, 0.0, proto=UDP)
    packet(table, 0.0, proto=TCP, flags=TCP_SYN)
    table.expire(59.9)
    assert table.ended == []
    table.expire(60.0)
    assert [(e.endpoints.proto, e.reason) for e in table.ended] == [(UDP, "idle_timeout")]
    packet(table, 200.0, proto=TCP)                   # activity pushes the TCP deadline on
    table.expire(499.0)
    assert len(table.ended) == 1
    table.expire(500.0)
    assert table.ended[-1].reason == "idle_timeout" and table.next_deadline == float("inf")


def test_active_timeout_ends_a_long_busy_flow() -> None:
    table = FlowTable(FlowTimeouts(active=1800))
    for second in range(0, 1900, 50):
        table.expire(float(second))                   # as the pipeline does: expire, then count
        packet(table, float(second), proto=UDP)
    assert [e.reason for e in table.ended] == ["active_timeout"]
    assert table.ended[0].last_ts == 1750.0


def test_a_full_table_evicts_the_flow_nearest_its_deadline_and_counts_it() -> None:
    table = FlowTable(FlowTimeouts(max_flows=100, udp_idle=60.0, emergency_idle=10.0))
    packet(table, 0.0, proto=UDP, cport=999)                   # answered: established
    packet(table, 0.1, forward=False, proto=UDP, cport=999)
    for port in range(100):                                    # a flood that is not answered
        packet(table, 1.0 + port / 100, proto=UDP, cport=1000 + port)
    assert table.evictions == 1 and len(table.flows) == 100
    (evicted,) = table.ended
    assert evicted.reason == "table_full" and evicted.endpoints.sport >= 1000
    # Emergency mode (95 flows) gave 1094…1098 the short timeout: their deadlines share
    # the wheel's earliest second, whose slot is a stack, so the last scheduled goes.
    assert evicted.endpoints.sport == 1098
    assert (17, A, 999, B, 443) in {f.endpoints for f in table.flows.values()}


def test_emergency_mode_shortens_unanswered_flows_and_ends_below_seventy_percent() -> None:
    table = FlowTable(FlowTimeouts(max_flows=20, udp_idle=60.0, emergency_idle=10.0))
    packet(table, 0.0, proto=UDP, cport=999)
    packet(table, 0.1, forward=False, proto=UDP, cport=999)    # answered
    for port in range(18):
        packet(table, 1.0, proto=UDP, cport=1000 + port)
    assert not table.emergency                                 # 19 flows: below 95 %
    packet(table, 2.0, proto=UDP, cport=2000)                  # the 20th: nearly full
    assert table.emergency and table.emergencies == 1
    table.expire(2.0 + 10.0)                                   # emergency flows go first
    assert [e.endpoints.sport for e in table.ended] == [2000]
    packet(table, 30.0, forward=False, proto=UDP, cport=999)   # the answered one goes on
    table.expire(61.0)                                         # the others at their idle time
    assert table.emergency is False and table.emergencies == 1  # below 70 %: over
    assert {e.endpoints.sport for e in table.ended} == {2000, *range(1000, 1018)}
    assert len(table.flows) == 1                               # the answered one, not idle yet
    packet(table, 61.5, proto=UDP, cport=3000)
    assert table.emergencies == 1 and table.flows[next(reversed(table.flows))].deadline == 121.5


def test_flush_ends_everything_as_end_of_input() -> None:
    table = FlowTable()
    packet(table, 1.0, proto=UDP)
    packet(table, 1.0, client=C)
    table.flush()
    assert sorted(e.reason for e in table.ended) == ["end_of_input", "end_of_input"]


HOSTS = [A, C, B]


def frame(src: bytes, sport: int, dst: bytes, dport: int, proto: int, flags: int,
          length: int) -> bytes:
    """An untagged Ethernet/IPv4 frame the pipeline's fast path takes."""
    header = (struct.pack("!HHHH", 0x5000 | flags, 1024, 0, 0) if proto == TCP
              else struct.pack("!HH", 8 + length, 0))
    transport = struct.pack("!HH", sport, dport) + (b"\x00" * 8 if proto == TCP else b"") + header
    total = 20 + len(transport) + length
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 1, 0, 64, proto, 0, src, dst)
    return b"\x00" * 12 + b"\x08\x00" + ip + transport + b"\x00" * length


packets = st.lists(st.tuples(
    st.integers(0, 400_000_000), st.sampled_from([(0, 1), (1, 0), (0, 2), (2, 1)]), st.booleans(),
    st.sampled_from([TCP, UDP]), st.sampled_from([0, TCP_ACK, TCP_ACK, TCP_SYN, TCP_FIN | TCP_ACK,
                                                  TCP_SYN | TCP_ACK, TCP_RST, 0x18]),
    st.integers(0, 60)), max_size=40)


@settings(max_examples=examples(300), deadline=None)
@given(packets)
def test_the_pipeline_counts_flows_as_the_table_does(sequence) -> None:
    """Frames through the pipeline (decoding, expiry, counting) end their flows exactly
    as `FlowTable.update` alone, given the same packets, ends them."""
    pipeline = Pipeline(timeouts=FlowTimeouts(tcp_idle=100, udp_idle=30, active=300))
    table = FlowTable(FlowTimeouts(tcp_idle=100, udp_idle=30, active=300))
    for micros, (a, b), reverse, proto, flags, length in sequence:
        ts = micros // 10**6 + micros % 10**6 * 1e-6      # as a capture's record gives it
        src, dst = (HOSTS[b], HOSTS[a]) if reverse else (HOSTS[a], HOSTS[b])
        sport, dport = (443, 40000 + b) if reverse else (40000 + b, 443)
        flags = flags if proto == TCP else 0
        pipeline.feed(ts, frame(src, sport, dst, dport, proto, flags, length), ethernet)
        if ts >= table.next_deadline:
            table.expire(ts)
        table.update(ts, proto, src, sport, dst, dport, flags,
                     (40 if proto == TCP else 28) + length, ())
    pipeline.finish()
    table.flush()
    assert [event for event in pipeline.events if isinstance(event, FlowEnd)] == table.ended

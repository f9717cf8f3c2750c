"""The flow table: direction, counters, TCP ends, timeouts by packet time, eviction."""

from __future__ import annotations

from sensor.flows import TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN, FlowTable, FlowTimeouts

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
    assert is_new and (flow.src, flow.sport) == (A, 40000) and not forward


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


def test_a_full_table_evicts_the_oldest_and_counts_it() -> None:
    table = FlowTable(FlowTimeouts(max_flows=3))
    for port in range(4):
        packet(table, float(port), proto=UDP, cport=1000 + port)
    assert table.evictions == 1 and len(table.flows) == 3
    assert [(e.endpoints.sport, e.reason) for e in table.ended] == [(1000, "table_full")]


def test_flush_ends_everything_as_end_of_input() -> None:
    table = FlowTable()
    packet(table, 1.0, proto=UDP)
    packet(table, 1.0, client=C)
    table.flush()
    assert sorted(e.reason for e in table.ended) == ["end_of_input", "end_of_input"]

"""Pipeline events → batches: what a batch holds, where it is cut, how batches merge."""

from __future__ import annotations

import ipaddress

from sensor.core.events import DnsEvent, DnsMessage, DnsQuestion, Endpoints, FlowEnd, Hit, Indicator
from sensor.uplink.batch import BatchBuilder, merge_batches

HOST = ipaddress.ip_address("192.168.1.10").packed
OTHER = ipaddress.ip_address("192.168.1.11").packed
OUTSIDE = ipaddress.ip_address("198.51.100.7").packed
EVIL = Indicator("evil.example", "domain", ("ncsc",), "2022", 1, "", "")


def internal(addr: bytes) -> bool:
    return addr[:2] == b"\xc0\xa8"


def hit(ts: float, host: bytes = HOST, outbound: bool = True) -> Hit:
    ep = Endpoints(17, host, 40000, OUTSIDE, 53) if outbound else Endpoints(6, OUTSIDE, 1, host, 22)
    return Hit(ts, 1, ep, EVIL, "dns.query" if outbound else "flow.src_ip", host, outbound,
               "a.evil.example")


def query(ts: float, host: bytes) -> DnsEvent:
    message = DnsMessage(7, 0x0100, (DnsQuestion("ok.example", 1),), ())
    return DnsEvent(ts, 2, Endpoints(17, host, 40001, OUTSIDE, 53), message)


def flow(first_ts: float, host: bytes, last_ts: float | None = None) -> FlowEnd:
    return FlowEnd(3, Endpoints(17, host, 40001, OUTSIDE, 53), first_ts,
                   first_ts if last_ts is None else last_ts, 1, 60, 1, 120, 0, "established",
                   "idle_timeout", False)


def test_a_batch_holds_alerts_hourly_counts_and_hosts_seen() -> None:
    builder = BatchBuilder(internal, max_age=3600.0)
    builder.add([flow(7200.5, OTHER), hit(7201.0), hit(7260.0), hit(7262.0, outbound=False)])
    builder.cut()
    [batch] = builder.take()
    assert len(batch["alerts"]) == 3
    assert batch["alerts"][0]["host_ip"] == "192.168.1.10"
    assert batch["counts"] == [{"host_ip": "192.168.1.10", "host_mac": None, "hour": 7200,
                                "indicator": "evil.example", "indicator_type": "domain",
                                "hits": 2, "first": 7201.0, "last": 7260.0,
                                "matches": ["dns.query"]}]
    seen = {(row["host_ip"], row["first"], row["last"]) for row in batch["hosts_seen"]}
    assert seen == {("192.168.1.11", 7200.5, 7200.5), ("192.168.1.10", 7201.0, 7260.0)}


def test_batches_are_cut_by_alert_count_and_by_packet_time() -> None:
    builder = BatchBuilder(internal, max_alerts=2, max_age=10.0)
    builder.add([hit(0.0), hit(1.0), hit(2.0), hit(20.0), hit(21.0)])
    builder.cut()
    assert [len(b["alerts"]) for b in builder.take()] == [2, 1, 2]


def test_the_same_events_give_the_same_batches_whatever_the_chunking() -> None:
    events = [hit(t * 3.7) for t in range(200)] + [flow(800.0, OTHER)]
    one = BatchBuilder(internal, max_alerts=30, max_age=60.0)
    one.add(events)
    one.cut()
    other = BatchBuilder(internal, max_alerts=30, max_age=60.0)
    for start in range(0, len(events), 7):
        other.add(events[start:start + 7])
    other.cut()
    assert one.take() == other.take()


def test_hosts_are_seen_through_their_flows_by_each_flow_start() -> None:
    # DNS messages add nothing: the query is a flow of its own, seen when it ends.
    builder = BatchBuilder(internal, max_age=1e9)
    builder.add([query(10.0, OTHER), flow(3590.0, OTHER, last_ts=3700.0), flow(3610.0, OTHER),
                 flow(3650.0, OTHER), flow(20.0, OUTSIDE)])
    builder.cut()
    [batch] = builder.take()
    assert [(r["host_ip"], r["hour"], r["first"], r["last"]) for r in batch["hosts_seen"]] == [
        ("192.168.1.11", 0, 3590.0, 3590.0), ("192.168.1.11", 3600, 3610.0, 3650.0)]


def test_flows_of_outside_hosts_alone_make_no_batch() -> None:
    """A sensor that saw only outside hosts' flows (loopback, a quiet mirror port) has
    nothing to send or keep: no empty batch reaches the uplink or the summary store."""
    builder = BatchBuilder(internal, max_age=1e9)
    builder.add([flow(10.0, OUTSIDE), flow(3700.0, OUTSIDE)])
    builder.cut()
    assert builder.take() == []


def test_merging_sums_counts_and_counts_the_dropped_alerts() -> None:
    builder = BatchBuilder(internal, max_alerts=2)
    builder.add([hit(0.0), hit(1.0), hit(2.0), hit(3.0, OTHER)])
    builder.cut()
    merged = merge_batches(builder.take())
    assert merged["alerts"] == [] and merged["dropped_alerts"] == 4
    assert sorted((c["host_ip"], c["hits"], c["first"], c["last"]) for c in merged["counts"]) == [
        ("192.168.1.10", 3, 0.0, 2.0), ("192.168.1.11", 1, 3.0, 3.0)]

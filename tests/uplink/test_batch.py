"""Pipeline events → batches: what a batch holds, where it is cut, how batches merge."""

from __future__ import annotations

import ipaddress

from sensor.collector.api_schema import validate_batch
from sensor.core.events import (
    DnsEvent,
    DnsMessage,
    DnsQuestion,
    EncryptedDns,
    Endpoints,
    FlowEnd,
    Hit,
    Indicator,
)
from sensor.uplink.batch import BatchBuilder, Batching, merge_batches

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


MAC = "02:00:00:00:00:0a"


def mac_of(addr: bytes) -> str | None:
    return MAC if addr == HOST else None


def tls_hit(ts: float, outbound: bool = True, resolved_from: str = "") -> Hit:
    ep = (Endpoints(6, HOST, 40000, OUTSIDE, 443) if outbound
          else Endpoints(6, OUTSIDE, 5555, HOST, 22))
    return Hit(ts, 9, ep, EVIL, "tls.sni" if outbound else "flow.src_ip", HOST, outbound,
               "www.evil.example", resolved_from)


def dot(ts: float) -> EncryptedDns:
    return EncryptedDns(ts, 4, Endpoints(6, HOST, 40002, OUTSIDE, 853), HOST, "dot", "9.9.9.9")


def test_every_record_of_a_batch_is_as_the_collector_reads_it() -> None:
    builder = BatchBuilder(internal, mac_of, max_age=3600.0)
    builder.add([flow(7300.0, OTHER), flow(7301.0, OUTSIDE),
                 tls_hit(7310.0, resolved_from="evil.example"), hit(7320.0), dot(7400.0),
                 dot(7500.0), flow(7250.0, HOST), tls_hit(7600.0, outbound=False)])
    builder.cut()
    [batch] = builder.take()
    validate_batch({"sensor": "gw1", "stream": "s", "sequence": 1, **batch})
    assert batch["alerts"][0] == {
        "ts": 7310.0, "host_ip": "192.168.1.10", "host_mac": MAC, "indicator": "evil.example",
        "indicator_type": "domain", "match": "tls.sni", "seen": "www.evil.example",
        "outbound": True, "sources": ["ncsc"], "campaign": "2022", "severity": 1, "proto": 6,
        "src_ip": "192.168.1.10", "src_port": 40000, "dest_ip": "198.51.100.7",
        "dest_port": 443, "resolved_from": "evil.example"}
    assert "resolved_from" not in batch["alerts"][1]
    assert [(a["outbound"], a["src_ip"], a["dest_port"]) for a in batch["alerts"][1:]] == [
        (True, "192.168.1.10", 53), (False, "198.51.100.7", 22)]
    assert batch["counts"] == [{"host_ip": "192.168.1.10", "host_mac": MAC, "hour": 7200,
                                "indicator": "evil.example", "indicator_type": "domain",
                                "hits": 2, "first": 7310.0, "last": 7320.0,
                                "matches": ["dns.query", "tls.sni"]}]
    assert sorted(batch["hosts_seen"], key=lambda row: row["host_ip"]) == [
        {"host_ip": "192.168.1.10", "host_mac": MAC, "hour": 7200, "first": 7250.0,
         "last": 7500.0},
        {"host_ip": "192.168.1.11", "host_mac": None, "hour": 7200, "first": 7300.0,
         "last": 7300.0}]
    assert batch["encrypted_dns"] == [{"host_ip": "192.168.1.10", "host_mac": MAC,
                                       "hour": 7200, "kind": "dot", "server": "9.9.9.9",
                                       "flows": 2, "first": 7400.0, "last": 7500.0}]
    assert batch["dropped_alerts"] == 0


def test_a_batch_is_cut_when_its_rows_reach_the_limit() -> None:
    """Hosts seen, hit counts and encrypted-DNS rows together: at max_counts, not after."""
    builder = BatchBuilder(internal, max_counts=3, max_age=1e9)
    hosts = [ipaddress.ip_address(f"192.168.2.{n}").packed for n in range(1, 8)]
    builder.add([flow(10.0 + n, host) for n, host in enumerate(hosts)])
    builder.cut()
    assert [len(b["hosts_seen"]) for b in builder.take()] == [3, 3, 1]
    builder.add([hit(10.0), dot(11.0)])       # a host seen, its count, its DoT row: 3
    builder.add([hit(12.0, OTHER)])
    builder.cut()
    assert [(len(b["counts"]), len(b["encrypted_dns"])) for b in builder.take()] == [
        (1, 1), (1, 0)]


def test_a_quiet_batch_is_due_at_its_age_and_delivered_to_every_sink() -> None:
    got: list[list] = [[], []]
    batching = Batching(BatchBuilder(internal, max_age=60.0),
                        [got[0].extend, got[1].extend])
    batching.tick(1000.0)
    assert got == [[], []]                       # nothing started: nothing due
    batching.add([hit(100.0)])
    batching.tick(159.9)
    assert got == [[], []]
    batching.tick(160.0)
    assert len(got[0]) == len(got[1]) == 1 and got[0][0] is got[1][0]
    batching.add([hit(200.0), hit(260.0)])       # the second hit cuts the first's batch
    assert len(got[0]) == 2
    batching.flush()
    assert [len(b["alerts"]) for b in got[1]] == [1, 1, 1]
    batching.flush()
    assert len(got[0]) == 3                      # an empty batch is not sent


def test_merging_widens_spans_and_sums_every_kind_of_row() -> None:
    first = {"alerts": [{}], "dropped_alerts": 2,
             "counts": [{"host_ip": "h", "host_mac": None, "hour": 0, "indicator": "e",
                         "indicator_type": "domain", "hits": 2, "first": 5.0, "last": 6.0,
                         "matches": ["dns.query"]}],
             "hosts_seen": [{"host_ip": "h", "host_mac": None, "hour": 0, "first": 5.0,
                             "last": 6.0}],
             "encrypted_dns": [{"host_ip": "h", "host_mac": None, "hour": 0, "kind": "dot",
                                "server": "s", "flows": 1, "first": 5.0, "last": 5.0}]}
    second = {"alerts": [{}, {}], "dropped_alerts": 0,
              "counts": [{**first["counts"][0], "hits": 3, "first": 1.0, "last": 9.0,
                          "matches": ["tls.sni"]}],
              "hosts_seen": [{**first["hosts_seen"][0], "first": 7.0, "last": 8.0}],
              "encrypted_dns": [{**first["encrypted_dns"][0], "flows": 4, "first": 2.0,
                                 "last": 3.0}]}
    merged = merge_batches([first, second])
    assert merged["alerts"] == [] and merged["dropped_alerts"] == 5
    assert merged["counts"] == [{**first["counts"][0], "hits": 5, "first": 1.0, "last": 9.0,
                                 "matches": ["dns.query", "tls.sni"]}]
    assert merged["hosts_seen"] == [{**first["hosts_seen"][0], "first": 5.0, "last": 8.0}]
    assert merged["encrypted_dns"] == [{**first["encrypted_dns"][0], "flows": 5,
                                        "first": 2.0, "last": 5.0}]
    assert first["counts"][0]["hits"] == 2       # the batches merged are left as they were

"""Names the sensor cannot see, and how each hit was seen, from capture to report: a real
capture of DNS over TLS, over HTTPS to a public resolver and over QUIC
(pcaps/encrypted-dns/) counts its computer as using encrypted DNS, never as a campaign
hit; the batches carry it to the collector (SQLite and PostgreSQL), whose
report lists the computer in its annex; and the top-indicators annex shows the match
points (`tls.sni`, `http.host`, …) the hits came from."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sensor.blocklist.loader import load_blocklist
from sensor.collector.forms import LABELS, render
from sensor.collector.report import Period, Report, campaign_report
from sensor.collector.store import Store
from sensor.core.detect import internal_networks
from sensor.core.events import EncryptedDns, Hit
from sensor.core.pipeline import Pipeline
from sensor.sources.pcapfile import CaptureFile
from sensor.uplink.batch import BatchBuilder, merge_batches
from tests.conftest import PCAPS, RULES

CLIENT = "10.77.0.10"
CAPTURE = PCAPS / "encrypted-dns" / "dot-doh-doq.pcap"
UNIT = "Sở Thử nghiệm"


def replay_into(store: Store, captures: list[Path], rules: list[Path]) -> list:
    """The captures through a pipeline (the client as the one internal host) and its
    batches into the store, as the uplink would send them; the pipeline's events."""
    pipeline = Pipeline(load_blocklist(rules)[0], internal_networks([f"{CLIENT}/32"]))
    events = []
    for path in captures:
        for data, records, link in CaptureFile(path).batches():
            pipeline.feed_batch(data, records, link)
            events += pipeline.events
            pipeline.events.clear()
    pipeline.finish()
    events += pipeline.events
    builder = BatchBuilder(pipeline.detector.is_internal)
    builder.add(events)
    builder.cut()
    store.migrate()
    store.add_unit(UNIT)
    store.add_sensor("lab-gw1", UNIT, 0.0)
    for sequence, batch in enumerate(builder.take(), 1):
        assert store.ingest({**batch, "sensor": "lab-gw1", "stream": "s",
                             "sequence": sequence}, now=events[-1].last_ts)
    return events


def report_of(store: Store, events: list) -> Report:
    day = datetime.fromtimestamp(events[0].ts if hasattr(events[0], "ts") else
                                 events[0].first_ts, UTC).date()
    return campaign_report(store, Period(day, day))


def test_encrypted_dns_is_counted_and_listed_not_hit(backend: str) -> None:
    store = Store(backend, UTC)
    events = replay_into(store, [CAPTURE], [RULES])
    # in time order: within a batch, what a connection's names show comes last
    found = [(e.kind, e.server) for e in sorted((e for e in events if isinstance(e, EncryptedDns)),
                                                key=lambda e: e.ts)]
    assert found == [("dot", "10.77.0.1"), ("doh", "cloudflare-dns.com"), ("doq", "10.77.0.1")]
    assert not [e for e in events if isinstance(e, Hit)]
    [unit] = report_of(store, events).units
    assert (unit.computers_found, unit.computers_encrypted_dns) == (0, 1)
    [host] = unit.hosts_encrypted_dns
    assert (host.ip, host.kinds, host.servers, host.flows) == (
        CLIENT, ["doh", "doq", "dot"], ["cloudflare-dns.com", "10.77.0.1"], 3)
    markdown = render(report_of(store, events), "md", "en").decode()
    assert LABELS["en"]["encrypted_dns"] in markdown and "DOH, DOQ, DOT" in markdown


def test_a_resolver_is_known_by_its_address_too(tmp_path: Path) -> None:
    (tmp_path / "resolvers.txt").write_text("10.77.0.1\n")
    (tmp_path / "rules.yaml").write_text(
        "sources: []\ndoh_resolvers:\n  - {name: lab-resolvers, path: resolvers.txt}\n")
    store = Store(f"sqlite:///{tmp_path / 'c.db'}", UTC)
    events = replay_into(store, [CAPTURE], [tmp_path / "rules.yaml"])
    assert [(e.kind, e.server) for e in events if isinstance(e, EncryptedDns)] == [
        ("dot", "10.77.0.1"), ("doh", "10.77.0.1"), ("doq", "10.77.0.1")]   # once per flow


def test_the_top_indicators_annex_shows_how_each_was_seen(backend: str) -> None:
    store = Store(backend, UTC)
    captures = sorted([*PCAPS.glob("tls/*.pcap"), *PCAPS.glob("http/*.pcap"),
                       *PCAPS.glob("quic/*.pcap")])
    events = replay_into(store, captures, [RULES])
    [unit] = report_of(store, events).units
    assert {(i.indicator, tuple(i.matches)) for i in unit.top_indicators} == {
        ("c2-panel.example", ("http.host", "quic.sni", "tls.sni")),
        ("malhost.example", ("http.host", "quic.sni", "tls.sni"))}
    assert unit.computers_found == 1          # new match points count as connections


def test_a_full_spool_keeps_the_encrypted_dns_rows() -> None:
    rows = [{"host_ip": CLIENT, "host_mac": None, "hour": 0, "kind": "dot",
             "server": "10.77.0.1", "flows": n, "first": float(n), "last": float(n)}
            for n in (1, 2)]
    merged = merge_batches([{"alerts": [], "counts": [], "hosts_seen": [],
                             "encrypted_dns": [row], "dropped_alerts": 0} for row in rows])
    assert merged["encrypted_dns"] == [{**rows[0], "flows": 3, "last": 2.0}]

"""The daemon's /metrics, scraped for real after the demo captures were sent through a veth
pair, against what `madoc-sensor replay`'s pipeline counts in the same files."""

from __future__ import annotations

import ssl
import time
from collections import Counter
from pathlib import Path

import pytest

from sensor.blocklist.loader import load_blocklist
from sensor.config import DEFAULT_FILTER
from tests.collector.harness import (
    basic_auth_file,
    fetch,
    free_port,
    self_signed,
)
from tests.conftest import PCAPS, RULES, run_pipeline
from tests.daemon.netns import SensorProcess, Wire, inside, scrape_until
from tests.daemon.test_daemon import CAPTURES, write_config


def by_label(samples: dict, name: str, label: str) -> dict[str, float]:
    return {dict(labels)[label]: value for (sample, labels), value in samples.items()
            if sample == name}


@pytest.mark.parametrize("workers", [1, 2])
def test_metrics_after_the_demo_captures_match_the_replay(tmp_path: Path, workers: int) -> None:
    expected = run_pipeline(CAPTURES, [RULES], bpf_filter=DEFAULT_FILTER)
    with Wire() as wire:
        port = free_port()
        config = write_config(tmp_path, wire, workers)
        config.write_text(config.read_text() + f"metrics: {{listen: '127.0.0.1:{port}'}}\n")
        sensor = SensorProcess(wire.b, config)
        sensor.wait_for("READY=1")
        wire.replay(*CAPTURES)
        samples = scrape_until(wire.b, f"http://127.0.0.1:{port}/metrics", lambda got: got.get(
            ("madoc_captured_packets_total", ())) == expected.pipeline.stats.packets)
        assert sensor.stop() == 0, sensor.output
    assert f"metrics on http://127.0.0.1:{port}/metrics" in sensor.output
    pipeline = expected.pipeline

    def one(name: str) -> float:
        return samples[name, ()]

    assert one("madoc_captured_packets_total") == pipeline.stats.packets
    assert one("madoc_captured_bytes_total") == pipeline.stats.bytes
    assert by_label(samples, "madoc_kernel_dropped_packets_total", "interface") == {
        wire.end_b: 0}
    assert by_label(samples, "madoc_malformed_packets_total", "reason") == dict(
        pipeline.malformed)
    dns = Counter()
    for (name, labels), value in samples.items():
        if name == "madoc_dns_messages_total":
            dns[dict(labels)["type"]] += value
    assert dns == {"request": pipeline.stats.dns_requests,
                   "response": pipeline.stats.dns_responses}
    assert one("madoc_alerts_total") == len(expected.hits) == 20
    hits = Counter()
    for hit in expected.hits:
        for source in hit.indicator.sources:
            hits[source, hit.indicator.kind, hit.match] += 1
    assert {(dict(labels)["list"], dict(labels)["kind"], dict(labels)["match"]): value
            for (name, labels), value in samples.items() if name == "madoc_hits_total"} == hits
    assert one("madoc_hosts_hit") == len(pipeline.tally.hosts)
    report = load_blocklist([RULES])[1]
    assert by_label(samples, "madoc_indicators", "source") == {
        s.source.name: s.entries for s in report.sources}
    assert by_label(samples, "madoc_rules_reloads_total", "result") == {
        "success": 0, "failure": 0}
    assert time.time() - 120 < one("madoc_rules_last_success_timestamp_seconds") < time.time()
    assert len(by_label(samples, "madoc_worker_lag_seconds", "worker")) == workers
    assert samples["madoc_sensor_info", (("mode", "capture"), ("sensor", "gw1"))] == 1


def test_metrics_over_https_with_basic_auth(tmp_path: Path) -> None:
    """metrics.cert_file/key_file/basic_auth_file: what a province scraping sensors over
    the WAN sets; the credentials file is read at start, while the daemon is root."""
    cert, key = self_signed(tmp_path)
    auth = basic_auth_file(tmp_path)
    context = ssl.create_default_context(cafile=str(cert))
    with Wire() as wire:
        port = free_port()
        config = write_config(tmp_path, wire)
        config.write_text(config.read_text() + (
            f"metrics: {{listen: '127.0.0.1:{port}', cert_file: {cert}, key_file: {key}, "
            f"basic_auth_file: {auth}}}\n"))
        sensor = SensorProcess(wire.b, config)
        sensor.wait_for("READY=1")
        url = f"https://127.0.0.1:{port}/metrics"
        with inside(wire.b):
            refused = fetch(url, context)[0], fetch(url, context, ("prometheus", "nope"))[0]
            status, body = fetch(url, context, ("prometheus", "s3cret:with-colon"))
        assert sensor.stop() == 0, sensor.output
    assert refused == (401, 401)
    assert status == 200 and "madoc_captured_packets_total" in body
    assert f"metrics on https://127.0.0.1:{port}/metrics (basic auth)" in sensor.output


def test_names_inside_connections_and_encrypted_dns_on_metrics(tmp_path: Path) -> None:
    """Real TLS, QUIC and HTTP clients' captures and a computer resolving over DoT, DoH
    and DoQ, sent through the wire to a live sensor with the default filter."""
    captures = sorted([*PCAPS.glob("tls/*.pcap"), *PCAPS.glob("http/*.pcap"),
                       *PCAPS.glob("quic/*.pcap"), *PCAPS.glob("encrypted-dns/*.pcap")])
    expected = run_pipeline(captures, [RULES], bpf_filter=DEFAULT_FILTER).pipeline.stats
    with Wire() as wire:
        port = free_port()
        config = write_config(tmp_path, wire)
        config.write_text(config.read_text().replace(
            "[192.168.0.0/16, 10.0.0.0/8, fd00::/8]", "[10.77.0.10/32]")
            + f"metrics: {{listen: '127.0.0.1:{port}'}}\n")
        sensor = SensorProcess(wire.b, config)
        sensor.wait_for("READY=1")
        wire.replay(*captures)
        samples = scrape_until(wire.b, f"http://127.0.0.1:{port}/metrics", lambda got: got.get(
            ("madoc_captured_packets_total", ())) == expected.packets)
        assert sensor.stop() == 0, sensor.output
    assert by_label(samples, "madoc_app_messages_total", "protocol") == {
        "tls": expected.tls_hellos, "quic": expected.quic_hellos,
        "http": expected.http_requests} == {"tls": 7, "quic": 3, "http": 5}
    assert by_label(samples, "madoc_encrypted_dns_flows_total", "kind") == {
        "dot": 1, "doq": 1, "doh": 1}
    assert samples["madoc_encrypted_dns_hosts", ()] == 1

"""The sensor daemon's Prometheus metrics (`metrics.listen`, default 127.0.0.1:9570).

The daemon's loop takes a `SensorSnapshot` once a second (copies of the
merged worker figures and of the event counts); the exporter thread of
prometheus-client reads only that snapshot, so a scrape never touches the
counters the loop is changing and costs the packet path nothing. Every
figure is a total since start (counters) or a current value (gauges). There
is no per-host or per-indicator label (cardinality): the collector's API has
the top hosts and indicators. A hit counts once for each list that names its
indicator, so `sum(madoc_hits_total)` can exceed the alerts when lists overlap.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from sensor.core.decode.dns import rcode_name
from sensor.daemon.worker import WorkerStats
from sensor.sinks.counts import EventCounts
from sensor.support.basicauth import Credentials, wsgi_guard
from sensor.support.yamlconf import host_port
from sensor.uplink.sender import UplinkStats


class MetricsError(ValueError):
    """The metrics address cannot be used; the message says why."""


@dataclass
class SensorSnapshot:
    sensor_id: str
    mode: str
    workers: list[WorkerStats]
    alerts: int = 0
    flow_ends: Counter[str] = field(default_factory=Counter)
    hits: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    dns: Counter[tuple[bool, int]] = field(default_factory=Counter)
    hosts_hit: int = 0
    encrypted_dns: Counter[str] = field(default_factory=Counter)
    hosts_with_encrypted_dns: int = 0
    uplink: UplinkStats | None = None
    spool_batches: int = 0
    spool_bytes: int = 0

    @classmethod
    def take(cls, sensor_id: str, mode: str, workers: list[WorkerStats],
             counts: EventCounts, uplink: object | None) -> SensorSnapshot:
        """Copies, not references: the exporter thread reads this while the loop runs."""
        snapshot = cls(sensor_id, mode, list(workers), counts.alerts, Counter(counts.flow_ends),
                       Counter(counts.hits), Counter(counts.dns), counts.hosts_hit(),
                       Counter(counts.encrypted_dns), counts.hosts_with_encrypted_dns())
        if uplink is not None:
            snapshot.uplink = replace(uplink.stats)
            snapshot.spool_batches, snapshot.spool_bytes = uplink.spool.depth, uplink.spool.bytes
        return snapshot


class SensorCollector(Collector):
    def __init__(self) -> None:
        self.snapshot: SensorSnapshot | None = None

    def collect(self) -> Iterator[Metric]:
        snap = self.snapshot
        if snap is None:
            return
        total = WorkerStats()
        for part in snap.workers:
            total.add(part)
        info = GaugeMetricFamily("madoc_sensor_info", "The sensor's id and mode (always 1).",
                                 labels=["sensor", "mode"])
        info.add_metric([snap.sensor_id, snap.mode], 1)
        yield info
        yield CounterMetricFamily("madoc_captured_packets", "Packets captured and processed.",
                                  value=total.pipeline.packets)
        yield CounterMetricFamily("madoc_captured_bytes",
                                  "Bytes of the packets captured (as captured, up to snaplen).",
                                  value=total.pipeline.bytes)
        yield _labelled(CounterMetricFamily, "madoc_kernel_dropped_packets",
                        "Packets the kernel dropped because the capture ring was full.",
                        ["interface"], {(name,): c.dropped for name, c in total.capture.items()})
        yield _labelled(CounterMetricFamily, "madoc_kernel_received_packets",
                        "Packets that passed the capture filter, as the kernel counts them.",
                        ["interface"], {(name,): c.received for name, c in total.capture.items()})
        yield _labelled(CounterMetricFamily, "madoc_malformed_packets",
                        "Packets or DNS messages skipped as malformed, by reason.",
                        ["reason"], {(reason,): n for reason, n in total.malformed.items()})
        yield _labelled(CounterMetricFamily, "madoc_dns_messages", "DNS messages decoded.",
                        ["type", "rcode"],
                        {("response" if response else "request", rcode_name(rcode)): n
                         for (response, rcode), n in snap.dns.items()})
        yield GaugeMetricFamily("madoc_flows_active", "Flows open in the flow tables.",
                                value=total.flows_active)
        yield _labelled(CounterMetricFamily, "madoc_flows_ended", "Flows ended, by reason.",
                        ["reason"], {(reason,): n for reason, n in snap.flow_ends.items()})
        yield CounterMetricFamily("madoc_flow_table_evictions",
                                  "Flows ended early because the flow table was full.",
                                  value=total.flow_evictions)
        yield GaugeMetricFamily("madoc_flow_table_emergency",
                                "Flow tables (one per worker) nearly full now: unanswered "
                                "flows get the short emergency timeout.",
                                value=total.flows_in_emergency)
        yield CounterMetricFamily("madoc_flow_table_emergencies",
                                  "Times a flow table went into emergency mode.",
                                  value=total.flow_emergencies)
        yield _labelled(CounterMetricFamily, "madoc_hits",
                        "Blocklist hits, once for each list naming the indicator.",
                        ["list", "kind", "match"], dict(snap.hits))
        yield CounterMetricFamily("madoc_alerts", "Alerts (hits) written and sent.",
                                  value=snap.alerts)
        yield GaugeMetricFamily("madoc_hosts_hit",
                                "Internal hosts with an outbound hit in the last hour.",
                                value=snap.hosts_hit)
        yield _labelled(CounterMetricFamily, "madoc_app_messages",
                        "Names read inside connections: TLS and QUIC ClientHellos, HTTP "
                        "requests.", ["protocol"],
                        {("tls",): total.pipeline.tls_hellos,
                         ("quic",): total.pipeline.quic_hellos,
                         ("http",): total.pipeline.http_requests})
        yield _labelled(CounterMetricFamily, "madoc_encrypted_dns_flows",
                        "Flows of internal hosts to encrypted DNS (dot: TCP 853, doq: UDP 853, "
                        "doh: a listed DNS-over-HTTPS resolver), whose lookups the sensor "
                        "cannot read.", ["kind"],
                        {(kind,): snap.encrypted_dns.get(kind, 0)
                         for kind in ("dot", "doq", "doh")})
        yield GaugeMetricFamily("madoc_encrypted_dns_hosts",
                                "Internal hosts that used encrypted DNS in the last hour.",
                                value=snap.hosts_with_encrypted_dns)
        yield _labelled(GaugeMetricFamily, "madoc_indicators", "Indicators loaded, by source.",
                        ["source"], {(name,): n for name, n in total.rules.source_entries.items()})
        yield _labelled(CounterMetricFamily, "madoc_rules_reloads", "Rules reloads, by result.",
                        ["result"], {("success",): total.rules.reloads,
                                     ("failure",): total.rules.failures})
        yield GaugeMetricFamily("madoc_rules_last_success_timestamp_seconds",
                                "When the rules were last loaded without error (Unix time).",
                                value=total.rules.last_success)
        lag = GaugeMetricFamily("madoc_worker_lag_seconds",
                                "Kernel timestamp of the last frame processed, to the time it "
                                "was processed.", labels=["worker"])
        for index, part in enumerate(snap.workers):
            lag.add_metric([str(index)], part.lag)
        yield lag
        if snap.mode == "gateway":
            yield CounterMetricFamily("madoc_conntrack_events", "Conntrack events used.",
                                      value=total.pipeline.conntrack_events)
            yield CounterMetricFamily("madoc_conntrack_overruns",
                                      "Times conntrack events were lost (receive buffer full).",
                                      value=total.conntrack_overruns)
        if snap.uplink is not None:
            up = snap.uplink
            yield _labelled(CounterMetricFamily, "madoc_uplink_batches",
                            "Batches the uplink finished, by result.", ["result"],
                            {("sent",): up.sent, ("duplicate",): up.duplicates,
                             ("rejected",): up.rejected})
            yield CounterMetricFamily("madoc_uplink_failures",
                                      "Failed attempts to send a batch (retried later).",
                                      value=up.failures)
            for name, text, value in (
                    ("spool_batches", "Batches waiting in the on-disk spool.",
                     snap.spool_batches),
                    ("spool_bytes", "Bytes of the batches waiting in the spool.",
                     snap.spool_bytes),
                    ("last_success_timestamp_seconds",
                     "When a batch was last accepted by the collector.", up.last_success)):
                yield GaugeMetricFamily(f"madoc_uplink_{name}", text, value=value)


def _labelled(kind: type, name: str, text: str, labels: list[str],
              values: dict[tuple[str, ...], float]) -> Metric:
    family = kind(name, text, labels=labels)
    for key, value in sorted(values.items()):
        family.add_metric(list(key), value)
    return family


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:    # noqa: A002
        """Scrapes are not logged (one every 15–30 s, from Prometheus)."""


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Server6(_Server):
    address_family = socket.AF_INET6


def serve(listen: str, collector: Collector, certfile: str | None = None,
          keyfile: str | None = None, credentials: Credentials | None = None) -> None:
    """Serve /metrics from a thread: prometheus-client's WSGI exposition, behind basic
    authentication when given credentials, over HTTPS when given a cert and key."""
    address = host_port(listen)
    if not address or not address[0]:
        raise MetricsError(f"metrics.listen must be HOST:PORT, not {listen!r}")
    host, port = address
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    app = make_wsgi_app(registry)
    if credentials:
        app = wsgi_guard(app, credentials)
    try:
        server = make_server(host, port, app, _Server6 if ":" in host else _Server,
                             handler_class=_QuietHandler)
        if certfile:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(certfile, keyfile)
            server.socket = context.wrap_socket(server.socket, server_side=True)
    except ssl.SSLError as err:
        raise MetricsError(f"cannot use {certfile} / {keyfile} for metrics: {err}") from err
    except OSError as err:
        raise MetricsError(f"cannot serve metrics on {listen}: {err.strerror or err}") from err
    threading.Thread(target=server.serve_forever, name="madoc-metrics", daemon=True).start()

"""Events counted by kind as they leave the pipeline: the figures of replay's summary
(counts, malformed reasons, the per-host table) and of the daemon's metrics."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import TextIO

from sensor.core.events import (
    QR_RESPONSE,
    RCODE_MASK,
    DnsEvent,
    EncryptedDns,
    FlowEnd,
    Hit,
    addr_text,
)
from sensor.core.pipeline import Event, Pipeline

HOST_WINDOW = 3600.0     # seconds of event time for `hosts_hit`


class EventCounts:
    """Counts what leaves the pipeline, by kind (the pipeline counts what enters):
    the summary's and the metrics' figures."""

    def __init__(self) -> None:
        self.alerts = 0
        self.flow_ends: Counter[str] = Counter()
        self.hits: Counter[tuple[str, str, str]] = Counter()   # (list, kind, match point)
        self.dns: Counter[tuple[bool, int]] = Counter()       # (is response, rcode)
        self.last_hit: dict[bytes, float] = {}                # host → its last outbound hit
        self.newest = 0.0                                     # event time of the newest hit
        self.encrypted_dns: Counter[str] = Counter()          # kind → flows
        self.last_encrypted: dict[bytes, float] = {}          # host → its last such flow

    def add(self, events: list[Event]) -> None:
        dns = self.dns
        for event in events:
            if isinstance(event, DnsEvent):
                flags = event.message.flags            # (is_response and rcode, inlined)
                dns[bool(flags & QR_RESPONSE), flags & RCODE_MASK] += 1
            elif isinstance(event, Hit):
                self._hit(event)
            elif isinstance(event, FlowEnd):
                self.flow_ends[event.reason] += 1
            elif isinstance(event, EncryptedDns):
                self.encrypted_dns[event.kind] += 1
                self.last_encrypted.pop(event.host, None)
                self.last_encrypted[event.host] = event.ts

    def _hit(self, hit: Hit) -> None:
        self.alerts += 1
        for source in hit.indicator.sources:        # once for each list naming it
            self.hits[source, hit.indicator.kind, hit.match] += 1
        if hit.outbound:
            self.last_hit.pop(hit.host, None)       # oldest first, for `hosts_hit`
            self.last_hit[hit.host] = hit.ts
            self.newest = max(self.newest, hit.ts)

    def hosts_hit(self) -> int:
        """Internal hosts with an outbound hit in the last HOST_WINDOW of event time."""
        return _recent(self.last_hit, self.newest - HOST_WINDOW)

    def hosts_with_encrypted_dns(self) -> int:
        """Internal hosts that used encrypted DNS in the last HOST_WINDOW of event time."""
        last = self.last_encrypted
        return _recent(last, max(last.values(), default=0.0) - HOST_WINDOW)


def _recent(last: dict[bytes, float], since: float) -> int:
    """How many hosts of `last` (host → time, oldest first) were there at `since` or
    later; the older ones are forgotten."""
    while last:
        host = next(iter(last))
        if last[host] >= since:
            break
        del last[host]
    return len(last)


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).astimezone().strftime("%Y-%m-%d %H:%M:%S%z")


def _counter_text(counter: Counter[str]) -> str:
    return ", ".join(f"{name} {count:,}" for name, count in counter.most_common())


MAX_HOST_ROWS = 50


def host_table(pipeline: Pipeline, limit: int = MAX_HOST_ROWS) -> list[str]:
    """Hosts with the most hits first; the first `limit` of them."""
    rows = sorted(pipeline.tally.hosts.items(), key=lambda item: (-item[1].hits, item[0]))
    lines = [f"{'host':<40} {'hits':>7} {'indicators':>10}  {'first seen':<24}  last seen"]
    for host, count in rows[:limit]:
        lines.append(f"{addr_text(host):<40} {count.hits:>7,} {len(count.indicators):>10}  "
                     f"{_when(count.first_ts):<24}  {_when(count.last_ts)}")
    if not rows:
        lines.append("(no internal host contacted a listed indicator)")
    elif len(rows) > limit:
        lines.append(f"… and {len(rows) - limit:,} more hosts (every hit is in the EVE alerts)")
    return lines


def write_summary(out: TextIO, pipeline: Pipeline, counts: EventCounts, files: int,
                  seconds: float) -> None:
    stats = pipeline.stats
    rate = stats.packets / seconds if seconds > 0 else 0.0
    malformed = sum(pipeline.malformed.values())
    lines = [
        f"files: {files}  packets: {stats.packets:,}  bytes: {stats.bytes:,}  "
        f"time: {seconds:.2f} s ({rate:,.0f} packets/s)",
        f"dns: {stats.dns_requests:,} requests, {stats.dns_responses:,} responses; "
        f"tls: {stats.tls_hellos:,} ClientHellos; quic: {stats.quic_hellos:,} ClientHellos; "
        f"http: {stats.http_requests:,} requests",
        f"encrypted DNS (DoT, DoQ, DoH): {stats.encrypted_dns:,} flows"
        + (f" ({_counter_text(counts.encrypted_dns)}) from "
           f"{len(counts.last_encrypted):,} hosts" if stats.encrypted_dns else ""),
        f"flows: {sum(counts.flow_ends.values()):,} ({_counter_text(counts.flow_ends) or 'none'}); "
        f"evicted when the table was full: {pipeline.flows.evictions:,}; "
        f"emergency mode (table nearly full) entered: {pipeline.flows.emergencies:,}",
        f"malformed: {malformed:,}"
        + (f" ({_counter_text(pipeline.malformed)})" if malformed else ""),
        f"not analysed: {_counter_text(pipeline.skipped) or 'none'}",
        f"alerts: {counts.alerts:,}",
        "",
        *host_table(pipeline),
    ]
    out.write("\n".join(lines) + "\n")

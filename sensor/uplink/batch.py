"""Pipeline events → uplink batches: alerts, per-host hit-count deltas, hosts seen, and
per-host counts of flows to encrypted-DNS resolvers.

A batch is cut when it holds `max_alerts` alerts or `max_counts` rows (hit counts and
hosts seen alike, so a flood from a million spoofed addresses makes many batches on
disk, not one in memory), or when an event arrives `max_age` seconds (packet time)
after the batch's first event. Cutting depends only on the event stream, so the same capture always
gives the same batches: a back-fill that is killed and started again can skip
exactly the batches it already spooled. Counts are bucketed by hour (UTC epoch
seconds of the hour's start), so the collector can sum them into days in any
whole-hour time zone; so are the hosts seen (an internal host that opened a flow,
with the first and last flow start that hour: the coverage figure). Nothing here
reads the clock or does I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from sensor.core.events import EncryptedDns, FlowEnd, Hit, addr_text

Batch = dict[str, Any]
HOUR = 3600

DEFAULT_MAX_ALERTS = 500
DEFAULT_MAX_COUNTS = 5000
DEFAULT_MAX_AGE = 10.0


def alert_record(hit: Hit, mac: str | None) -> dict[str, Any]:
    ep = hit.endpoints
    indicator = hit.indicator
    record = {"ts": hit.ts, "host_ip": addr_text(hit.host), "host_mac": mac,
              "indicator": indicator.value, "indicator_type": indicator.kind,
              "match": hit.match, "seen": hit.seen, "outbound": hit.outbound,
              "sources": list(indicator.sources), "campaign": indicator.campaign,
              "severity": indicator.severity, "proto": ep.proto,
              "src_ip": addr_text(ep.src), "src_port": ep.sport,
              "dest_ip": addr_text(ep.dst), "dest_port": ep.dport}
    if hit.resolved_from:
        record["resolved_from"] = hit.resolved_from
    return record


class BatchBuilder:
    """Accumulates events into batches; finished batches wait in `ready`.

    `is_internal` says which addresses are our hosts (for "hosts seen", the
    coverage count); `mac_of` gives a host's MAC address when the sensor knows
    it (gateway mode), which the collector then uses as the host's identity."""

    def __init__(self, is_internal: Callable[[bytes], bool],
                 mac_of: Callable[[bytes], str | None] = lambda addr: None,
                 max_alerts: int = DEFAULT_MAX_ALERTS, max_counts: int = DEFAULT_MAX_COUNTS,
                 max_age: float = DEFAULT_MAX_AGE) -> None:
        self.is_internal = is_internal
        self.mac_of = mac_of
        self.max_alerts = max_alerts
        self.max_counts = max_counts
        self.max_age = max_age
        self.ready: list[Batch] = []
        self._reset()

    def _reset(self) -> None:
        self._started: float | None = None
        self._alerts: list[dict[str, Any]] = []
        # (host, hour, indicator, kind) → [hits, first, last, match points]
        self._counts: dict[tuple[bytes, int, str, str], list[Any]] = {}
        # (host, hour, kind, server) → [flows, first, last]: encrypted DNS
        self._encrypted: dict[tuple[bytes, int, str, str], list[float]] = {}
        # hour index (ts // HOUR) → host → [first, last]: nearly every event falls in the
        # hour of the one before, so the loop below keeps that hour's table at hand
        self._seen: dict[float, dict[bytes, list[float]]] = {}
        self._rows = 0                  # hosts-seen rows: with the counts, up to max_counts

    def add(self, events: Iterable) -> None:
        # The uplink's share of the packet path: every ended flow. A host is seen through
        # the flows it opens (a DNS query is a flow of its own, so DNS messages are not
        # looked at). The common case, a host already seen this hour, is a float
        # division, a compare and one dict lookup by the host's address; only a host not
        # yet seen this hour is asked whether it is internal (only those are stored).
        is_internal, max_age = self.is_internal, self.max_age
        hour = hosts = None
        for event in events:
            cls = event.__class__
            if cls is FlowEnd:
                ts, host = event.first_ts, event.endpoints.src
            elif cls is Hit or cls is EncryptedDns:
                ts, host = event.ts, event.host
            else:
                continue
            started = self._started
            if started is None:
                self._started = ts
            elif ts - started >= max_age:
                self.cut()
                self._started = ts
                hour = None
            if cls is not FlowEnd:
                if cls is Hit:
                    self._hit(event)
                else:
                    self._encrypted_dns(event)
                if len(self._alerts) >= self.max_alerts or self._held() >= self.max_counts:
                    self.cut()
                    hour = None
                continue
            if ts // HOUR != hour:
                hour = ts // HOUR
                hosts = self._hosts_in(hour)
            span = hosts.get(host)
            if span is not None:
                if ts > span[1]:
                    span[1] = ts
                elif ts < span[0]:
                    span[0] = ts
            elif is_internal(host):
                hosts[host] = [ts, ts]
                self._rows += 1
                if self._held() >= self.max_counts:
                    self.cut()
                    hour = None

    def _hosts_in(self, hour: float) -> dict[bytes, list[float]]:
        hosts = self._seen.get(hour)
        if hosts is None:
            hosts = self._seen[hour] = {}
        return hosts

    def _hit(self, hit: Hit) -> None:
        self._alerts.append(alert_record(hit, self.mac_of(hit.host)))
        if not hit.outbound:
            return          # a listed address reaching us does not make the host infected
        hour = self._saw(hit.host, hit.ts)
        key = (hit.host, hour, hit.indicator.value, hit.indicator.kind)
        count = self._counts.get(key)
        if count is None:
            self._counts[key] = [1, hit.ts, hit.ts, {hit.match}]
        else:
            count[0] += 1
            count[2] = hit.ts
            count[3].add(hit.match)

    def _held(self) -> int:
        """Rows of the batch being filled: hosts seen, hit counts, encrypted-DNS counts."""
        return self._rows + len(self._counts) + len(self._encrypted)

    def _encrypted_dns(self, event: EncryptedDns) -> None:
        key = (event.host, self._saw(event.host, event.ts), event.kind, event.server)
        count = self._encrypted.get(key)
        if count is None:
            self._encrypted[key] = [1, event.ts, event.ts]
        else:
            count[0] += 1
            count[2] = event.ts

    def _saw(self, host: bytes, ts: float) -> int:
        """Note `host` active at `ts`; returns the hour (epoch seconds of its start)."""
        hosts = self._hosts_in(ts // HOUR)
        span = hosts.get(host)
        if span is None:
            hosts[host] = [ts, ts]
            self._rows += 1
        elif ts < span[0]:
            span[0] = ts
        elif ts > span[1]:
            span[1] = ts
        return int(ts // HOUR) * HOUR

    def due(self, now: float) -> bool:
        """Whether the batch being filled is `max_age` old at `now` (live capture:
        a quiet link sends no event to cut it)."""
        return self._started is not None and now - self._started >= self.max_age

    def cut(self) -> None:
        """Finish the current batch (if it holds anything) and start a new one."""
        if self._alerts or self._counts or self._encrypted or any(self._seen.values()):
            self.ready.append(self._batch())
        self._reset()

    def _batch(self) -> Batch:
        mac_of = self.mac_of
        counts = [{"host_ip": addr_text(host), "host_mac": mac_of(host), "hour": hour,
                   "indicator": value, "indicator_type": kind, "hits": int(c[0]),
                   "first": c[1], "last": c[2], "matches": sorted(c[3])}
                  for (host, hour, value, kind), c in self._counts.items()]
        seen = [{"host_ip": addr_text(host), "host_mac": mac_of(host),
                 "hour": int(index) * HOUR, "first": span[0], "last": span[1]}
                for index, hosts in self._seen.items() for host, span in hosts.items()]
        encrypted = [{"host_ip": addr_text(host), "host_mac": mac_of(host), "hour": hour,
                      "kind": kind, "server": server, "flows": int(c[0]), "first": c[1],
                      "last": c[2]}
                     for (host, hour, kind, server), c in self._encrypted.items()]
        return {"alerts": self._alerts, "counts": counts, "hosts_seen": seen,
                "encrypted_dns": encrypted, "dropped_alerts": 0}

    def take(self) -> list[Batch]:
        ready, self.ready = self.ready, []
        return ready


def merge_batches(batches: list[Batch]) -> Batch:
    """One batch with the summed counts, hosts seen and encrypted-DNS rows of `batches`,
    their alerts dropped and counted in `dropped_alerts`: what a full spool keeps."""
    dropped = sum(batch["dropped_alerts"] + len(batch["alerts"]) for batch in batches)
    return {"alerts": [],
            "counts": _merged(batches, "counts", ("indicator", "indicator_type"), "hits"),
            "hosts_seen": _merged(batches, "hosts_seen", (), ""),
            "encrypted_dns": _merged(batches, "encrypted_dns", ("kind", "server"), "flows"),
            "dropped_alerts": dropped}


def _merged(batches: list[Batch], name: str, keys: tuple[str, ...], total: str
            ) -> list[dict[str, Any]]:
    """The rows called `name` of every batch, one per host, hour and `keys`: `total`
    summed, first and last widened."""
    rows: dict[tuple, dict[str, Any]] = {}
    for batch in batches:
        for row in batch.get(name, ()):
            key = (row["host_ip"], row["host_mac"], row["hour"], *(row[k] for k in keys))
            merged = rows.get(key)
            if merged is None:
                rows[key] = dict(row)
                continue
            if total:
                merged[total] += row[total]
            if "matches" in row:
                merged["matches"] = sorted({*merged.get("matches", ()), *row["matches"]})
            merged["first"] = min(merged["first"], row["first"])
            merged["last"] = max(merged["last"], row["last"])
    return list(rows.values())


class Batching:
    """One `BatchBuilder` whose finished batches go to every sink (the daemon's uplink
    spool and its local summary store): the events are batched once, however many
    places keep the batches."""

    def __init__(self, builder: BatchBuilder,
                 sinks: list[Callable[[list[Batch]], None]]) -> None:
        self.builder, self.sinks = builder, sinks

    def add(self, events: Iterable) -> None:
        self.builder.add(events)
        self._deliver()

    def tick(self, now: float) -> None:
        """Cut the batch being filled once it is `max_age` old (a quiet link)."""
        if self.builder.due(now):
            self.builder.cut()
            self._deliver()

    def flush(self) -> None:
        self.builder.cut()
        self._deliver()

    def _deliver(self) -> None:
        batches = self.builder.take()
        if batches:
            for sink in self.sinks:
                sink(batches)

"""A computer's evidence, as its page and `GET /hosts/{id}` show it: every indicator it
contacted and how each was seen, its hits by day, the addresses it had, its latest
alerts, the audit log of what staff did, and its status over time.

The database reads the rows (`Store.host_evidence`); this module only shapes them. No
clock inside: the status timeline follows from the hits and the marks alone.

The timeline tells the story the status column sums up: a computer becomes
*infected* at its first hit, *handled* when staff mark it (or when its sensor has
watched for the quiet period without a hit), and *infected again* at a hit after
that. Hits are kept per day with the day's first and last hit, so a hit after a mark
on the same day is placed at that day's last hit: the moment that proves the mark
came too early.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sensor.collector.store import Host, HostRows


@dataclass
class IndicatorEvidence:
    """One indicator a computer contacted, over all time."""
    indicator: str
    indicator_type: str
    hits: int
    first: float | None         # None on rows stored before hit times were kept
    last: float | None
    matches: list[str]          # how it was seen: dns.query, flow.dest_ip, tls.sni, …
    hits_by_day: dict[str, int] = field(default_factory=dict)


@dataclass
class Address:
    ip: str
    mac: str | None
    sensor: str
    first_seen: float
    last_seen: float


@dataclass
class Action:
    """One line of the audit log: who did what to the computer, when, and their note."""
    ts: float
    action: str
    by: str
    note: str


@dataclass
class StatusChange:
    ts: float
    status: str                 # infected, handled
    why: str                    # first_hit, hit_after_handled, marked, quiet_period
    by: str | None = None


@dataclass
class HostEvidence:
    host: Host
    indicators: list[IndicatorEvidence]
    addresses: list[Address]
    actions: list[Action]
    timeline: list[StatusChange]
    alerts: list[dict[str, Any]]    # newest first, their EVE-like fields


_ALERT_FIELDS = ("ts", "sensor", "indicator", "indicator_type", "match", "seen", "sources",
                 "campaign", "severity", "proto", "src_ip", "src_port", "dest_ip",
                 "dest_port", "resolved_from")


def host_evidence(host: Host, rows: HostRows, quiet_seconds: float) -> HostEvidence:
    matches: dict[str, list[str]] = {}
    for indicator, match in rows.matches:
        matches.setdefault(indicator, []).append(match)
    indicators = {indicator: IndicatorEvidence(indicator, kind, hits, first, last,
                                               matches.get(indicator, []))
                  for indicator, kind, hits, first, last in rows.indicators}
    for day, indicator, _kind, hits, _first, _last in rows.hits:
        if indicator in indicators:
            indicators[indicator].hits_by_day[day] = hits
    actions = [Action(*row) for row in rows.actions]
    return HostEvidence(
        host, list(indicators.values()),
        [Address(ip, mac or None, sensor, first, last)
         for ip, mac, sensor, first, last in rows.addresses],
        actions, status_timeline(rows.hits, actions, rows.data_until, quiet_seconds),
        [dict(zip(_ALERT_FIELDS, alert, strict=True)) for alert in rows.alerts])


def status_timeline(hits: list[tuple], actions: list[Action], data_until: float | None,
                    quiet_seconds: float) -> list[StatusChange]:
    """Infected → handled → infected again, from the hit rows (day, indicator, kind,
    hits, first ts, last ts), the marks, and the latest event the host's sensor reported.
    A gap of more than the quiet period between two hits counts as handled (the sensor
    was watching: it reported the hit after the gap); a row without times, stored
    before they were kept, counts at its day's midnight (UTC)."""
    moments: list[tuple[float, int, str | None]] = []     # (ts, 0 hit / 1 mark, by)
    for day, _indicator, _kind, _hits, first, last in hits:
        midnight = datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp()
        moments += [(first or midnight, 0, None), (last or midnight, 0, None)]
    moments += [(a.ts, 1, a.by) for a in actions if a.action == "handled"]
    changes: list[StatusChange] = []
    infected, last_hit = False, 0.0
    for ts, is_mark, by in sorted(moments, key=lambda m: m[:2]):    # a hit before a mark
        if is_mark:
            if infected:
                changes.append(StatusChange(ts, "handled", "marked", by))
                infected = False
            continue
        if infected and quiet_seconds and ts - last_hit > quiet_seconds:
            changes.append(StatusChange(last_hit + quiet_seconds, "handled", "quiet_period"))
            infected = False
        if not infected:
            changes.append(StatusChange(ts, "infected",
                                        "hit_after_handled" if changes else "first_hit"))
            infected = True
        last_hit = ts
    if infected and data_until is not None and quiet_seconds and \
            last_hit < data_until - quiet_seconds:
        changes.append(StatusChange(last_hit + quiet_seconds, "handled", "quiet_period"))
    return changes

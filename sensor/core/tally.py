"""Per-host counts: all counting state about internal hosts lives here.

A host is counted when it makes an outbound contact with a listed indicator
(an infected machine), not when a listed address reaches it. Nothing here
reads the clock or does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sensor.core.events import Hit

MAX_INDICATORS_PER_HOST = 1000      # bounds memory if one host hits a whole feed


@dataclass(slots=True)
class HostCount:
    hits: int = 0
    indicators: set[str] = field(default_factory=set)
    first_ts: float = 0.0
    last_ts: float = 0.0


class HostTally:
    def __init__(self) -> None:
        self.hosts: dict[bytes, HostCount] = {}

    def add(self, hit: Hit) -> None:
        if not hit.outbound:
            return
        count = self.hosts.get(hit.host)
        if count is None:
            count = self.hosts[hit.host] = HostCount(first_ts=hit.ts, last_ts=hit.ts)
        count.hits += 1
        if len(count.indicators) < MAX_INDICATORS_PER_HOST:
            count.indicators.add(hit.indicator.value)
        count.first_ts = min(count.first_ts, hit.ts)
        count.last_ts = max(count.last_ts, hit.ts)

"""The sensor's own summary store: per-host daily counts in a small local SQLite, for a
unit that has no collector (`madoc-sensor summary`).

It is the collector's store, schema and all, fed with the same batches the uplink
builds (without the alerts, which the EVE log keeps), so `madoc-sensor summary` and
`madoc-collector report --unit` count a period the same way by construction. Days are
in the machine's local time zone; a batch's day of receipt is its newest event's, so a
replayed old capture does not count as reporting today.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

from sensor.collector.store import Store, StoreError
from sensor.uplink.batch import BatchBuilder

STREAM = "local"
SUMMARY_SENSOR = "this-sensor"


class LocalSummary:
    def __init__(self, path: Path, unit: str, tz: tzinfo,
                 is_internal: Callable[[bytes], bool],
                 mac_of: Callable[[bytes], str | None] = lambda addr: None,
                 max_age: float = 60.0) -> None:
        self.store = open_summary(path, tz)
        self.store.add_unit(unit)
        self.store.add_sensor(SUMMARY_SENSOR, unit, 0.0)
        self.unit = unit
        self.sequence = self.store.last_sequence(SUMMARY_SENSOR, STREAM)
        self.builder = BatchBuilder(is_internal, mac_of, max_age=max_age)

    def add(self, events: list) -> None:
        self.builder.add(events)
        self._store()

    def tick(self, now: float) -> None:
        if self.builder.due(now):
            self.builder.cut()
            self._store()

    def close(self) -> None:
        self.builder.cut()
        self._store()
        self.store.close()

    def _store(self) -> None:
        for batch in self.builder.take():
            newest = max([r["last"] for r in batch["counts"] + batch["hosts_seen"]]
                         + [a["ts"] for a in batch["alerts"]])
            self.sequence += 1
            self.store.ingest({**batch, "alerts": [], "sensor": SUMMARY_SENSOR,
                               "stream": STREAM, "sequence": self.sequence}, now=newest)


def local_timezone() -> tzinfo:
    """The machine's time zone, for the summary's days."""
    zone = datetime.now().astimezone().tzinfo
    assert zone is not None
    return zone


def open_summary(path: Path, tz: tzinfo) -> Store:
    store = Store(f"sqlite:///{path}", tz)
    try:
        store.migrate()
    except Exception as err:     # sqlite3 errors: a locked, unreadable or foreign file
        raise StoreError(f"cannot use the summary store {path}: {err}") from err
    return store


def summary_command(args: Any) -> int:
    """`madoc-sensor summary`: the store named by --db or the configuration, a period,
    the report rendered to stdout."""
    from sensor.collector.forms import render
    from sensor.collector.report import ReportError, campaign_report, period_from
    from sensor.config import DEFAULT_STATE_DIR, ConfigError, load_config

    path = args.db or DEFAULT_STATE_DIR / "summary.db"
    try:
        if args.config:
            path = load_config(args.config).summary_path
        if not path.exists():
            raise StoreError(f"no summary store at {path} (the daemon keeps one in its "
                             f"state_dir; replay writes one with --summary-db)")
        tz = local_timezone()
        period = period_from(args.week, args.first, args.last, datetime.now(tz).date())
        report = campaign_report(open_summary(path, tz), period)
    except (ConfigError, StoreError, ReportError) as err:
        print(f"madoc-sensor: summary: {err}", file=sys.stderr)
        return 2
    sys.stdout.buffer.write(render(report, args.format, args.lang))
    return 0

"""The sensor's own summary store: per-host daily counts in a small local SQLite, for a
unit that has no collector (read by `madoc-sensor summary`, `commands/summary.py`).

It is the collector's store, schema and all, fed with the batches the uplink sends
(the daemon batches its events once, for both; the alerts are left out, the EVE log
keeps them), so `madoc-sensor summary` and `madoc-collector report --unit` count a
period the same way by construction. Days are in the machine's local time zone; a
batch's day of receipt is its newest event's, so a replayed old capture does not count
as reporting today.
"""

from __future__ import annotations

from datetime import tzinfo
from pathlib import Path

from sensor.collector.store import Store, StoreError
from sensor.uplink.batch import Batch

STREAM = "local"
SUMMARY_SENSOR = "this-sensor"


class LocalSummary:
    """A sink for finished batches (`Batching`): each is stored in the summary store,
    numbered on from the last one stored by an earlier run."""

    def __init__(self, path: Path, unit: str, tz: tzinfo) -> None:
        self.store = open_summary(path, tz)
        self.store.add_unit(unit)
        self.store.add_sensor(SUMMARY_SENSOR, unit, 0.0)
        self.sequence = self.store.last_sequence(SUMMARY_SENSOR, STREAM)

    def keep(self, batches: list[Batch]) -> None:
        for batch in batches:
            rows = batch["counts"] + batch["hosts_seen"] + batch["encrypted_dns"]
            newest = max([r["last"] for r in rows] + [a["ts"] for a in batch["alerts"]])
            self.sequence += 1
            self.store.ingest({**batch, "alerts": [], "sensor": SUMMARY_SENSOR,
                               "stream": STREAM, "sequence": self.sequence}, now=newest)

    def close(self) -> None:
        self.store.close()


def open_summary(path: Path, tz: tzinfo) -> Store:
    store = Store(f"sqlite:///{path}", tz)
    try:
        store.migrate()
    except Exception as err:     # sqlite3 errors: a locked, unreadable or foreign file
        raise StoreError(f"cannot use the summary store {path}: {err}") from err
    return store

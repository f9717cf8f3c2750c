#!/usr/bin/env python3
"""The campaign report's cost on a province-sized database.

100 units in 7 blocks, one sensor each, 10,000 hosts (100 per unit, with MAC
addresses), 8 weeks (2022-W30 … W37). Every host is active on every weekday; half of
them are hit, each on every weekday of its unit's weeks, by 5 of 200 indicators, with
10 hits a row: 1,000,000 (host, day, indicator) rows summing 10,000,000 hits. The data
goes in through `Store.ingest`, as sensors' batches (one per sensor and day), so the
tables and indexes are those the collector builds. Then the report (the SQL plus the
shaping into the JSON contract) is timed for one week, the 8 weeks, one block and one
unit, best of three, on SQLite and on PostgreSQL when Debian's server is installed.

    python tests/bench/bench_report.py [--hosts-per-unit N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))

from sensor.collector.forms import render  # noqa: E402
from sensor.collector.report import Period, campaign_report  # noqa: E402
from sensor.collector.store import Store  # noqa: E402
from tests.collector.harness import PostgresServer  # noqa: E402

UNITS, BLOCKS, WEEKS, INDICATORS, PER_HOST = 100, 7, 8, 200, 5
FIRST_MONDAY = date(2022, 7, 25)        # 2022-W30


def unit_name(n: int) -> str:
    return f"Đơn vị {n:03d}"


def seed(store: Store, hosts_per_unit: int) -> tuple[int, int]:
    """(host_hits rows, hits) after ingesting every sensor's batches."""
    store.migrate()
    for n in range(UNITS):
        store.add_unit(unit_name(n), f"Khối {n % BLOCKS + 1}", now=0.0)
        store.add_sensor_token(f"gw{n:03d}", unit_name(n), 0.0)
    rows = hits = 0
    days = [FIRST_MONDAY + timedelta(days=d) for d in range(WEEKS * 7)
            if (FIRST_MONDAY + timedelta(days=d)).weekday() < 5]
    for n in range(UNITS):
        sensor = f"gw{n:03d}"
        for sequence, day in enumerate(days, start=1):
            hour = int(datetime(day.year, day.month, day.day, 3, tzinfo=UTC).timestamp())
            seen, counts = [], []
            for h in range(hosts_per_unit):
                ip = f"10.{n}.{h // 250}.{h % 250 + 1}"
                mac = f"02:00:00:{n:02x}:{h >> 8:02x}:{h & 255:02x}"
                seen.append({"host_ip": ip, "host_mac": mac, "hour": hour,
                             "first": hour + 1.0, "last": hour + 3000.0})
                if h % 2 == 0:
                    for k in range(PER_HOST):
                        counts.append({"host_ip": ip, "host_mac": mac, "hour": hour,
                                       "indicator": f"c2-{(h + 7 * k) % INDICATORS}.bad.example",
                                       "indicator_type": "domain", "hits": 10,
                                       "first": hour + 1.0, "last": hour + 3000.0})
            store.ingest({"sensor": sensor, "stream": "bench", "sequence": sequence,
                          "alerts": [], "counts": counts, "hosts_seen": seen,
                          "dropped_alerts": 0}, now=hour + 3600.0)
            rows += len(counts)
            hits += 10 * len(counts)
    return rows, hits


def timed(store: Store, period: Period, **scope: str) -> float:
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        render(campaign_report(store, period, **scope), "json")
        best = min(best, time.perf_counter() - started)
    return best


def bench(label: str, url: str, hosts_per_unit: int) -> None:
    store = Store(url, UTC)
    started = time.perf_counter()
    rows, hits = seed(store, hosts_per_unit)
    print(f"{label}: {UNITS * hosts_per_unit:,} hosts, {rows:,} host-day-indicator rows, "
          f"{hits:,} hits, ingested in {time.perf_counter() - started:.0f} s", flush=True)
    last_week = Period.week("2022-W37")
    cases = [("one week, province", last_week, {}),
             ("8 weeks, province", Period(FIRST_MONDAY, last_week.last), {}),
             ("8 weeks, one block", Period(FIRST_MONDAY, last_week.last), {"group": "Khối 1"}),
             ("8 weeks, one unit", Period(FIRST_MONDAY, last_week.last),
              {"unit": unit_name(0)})]
    for name, period, scope in cases:
        print(f"| {label} | {name} | {timed(store, period, **scope):.2f} s |", flush=True)
    store.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts-per-unit", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="madoc-bench-report-") as tmp:
        bench("SQLite", f"sqlite:///{Path(tmp) / 'report.db'}", args.hosts_per_unit)
    try:
        server = PostgresServer()
    except FileNotFoundError as err:
        print(f"PostgreSQL: not installed ({err}); skipped")
        return 0
    try:
        bench("PostgreSQL", server.new_database(), args.hosts_per_unit)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

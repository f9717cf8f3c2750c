#!/usr/bin/env python3
"""The campaign report's and the staff page's cost on a province-sized database.

100 units in 7 blocks, one sensor each, 10,000 hosts (100 per unit, with MAC
addresses), 8 weeks (2022-W30 … W37). Every host is active on every weekday; one in
`--hit-every` (default 2) is hit, each on every weekday of its unit's weeks, by 5 of 200
indicators, with 10 hits a row: by default 1,000,000 (host, day, indicator) rows summing
10,000,000 hits. The data goes in through `Store.ingest`, as sensors' batches (one per
sensor and day), so the tables and indexes are those the collector builds. Then, best
of three: the report (the SQL plus the shaping into the JSON contract) for one week,
the 8 weeks, one block and one unit; and what the staff's page asks the database for a
computer list (a page of 50 with the list's total: as it opens, sorted by hits,
searched by IP, filtered by indicator, and for a unit's account) and for one computer's
evidence. On SQLite, and on PostgreSQL when Debian's server is installed.

    python tests/bench/bench_report.py [--hosts-per-unit N] [--hit-every N] [--sqlite-only]

The page's figure for 50,000 computers and 10 M hits: `--hosts-per-unit 500 --hit-every 10`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))

from sensor.collector.evidence import host_evidence  # noqa: E402
from sensor.collector.forms import render  # noqa: E402
from sensor.collector.report import Period, campaign_report  # noqa: E402
from sensor.collector.store import EVERYTHING, HostFilter, Scope, Store  # noqa: E402
from tests.collector.harness import PostgresServer  # noqa: E402

UNITS, BLOCKS, WEEKS, INDICATORS, PER_HOST = 100, 7, 8, 200, 5
FIRST_MONDAY = date(2022, 7, 25)        # 2022-W30


def unit_name(n: int) -> str:
    return f"Đơn vị {n:03d}"


def seed(store: Store, hosts_per_unit: int, hit_every: int) -> tuple[int, int]:
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
                if h % hit_every == 0:
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


def best_of_three(work: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best


def report(store: Store, period: Period, **scope: str) -> Callable[[], object]:
    return lambda: render(campaign_report(store, period, **scope), "json")


def host_list(store: Store, scope: Scope, wanted: HostFilter,
              sort: str = "id") -> Callable[[], object]:
    """What the computer list's page reads: a page of 50 and the list's total."""
    def work() -> object:
        return store.hosts(scope, wanted, sort, sort != "id", 0, 50), \
            store.count_hosts(scope, wanted)
    return work


def evidence(store: Store, host_id: int) -> Callable[[], object]:
    def work() -> object:
        host = store.host(host_id, EVERYTHING)
        return host_evidence(host, store.host_evidence(host), store.quiet_seconds)
    return work


def bench(label: str, url: str, hosts_per_unit: int, hit_every: int) -> None:
    store = Store(url, UTC)
    started = time.perf_counter()
    rows, hits = seed(store, hosts_per_unit, hit_every)
    print(f"{label}: {UNITS * hosts_per_unit:,} hosts, {rows:,} host-day-indicator rows, "
          f"{hits:,} hits, ingested in {time.perf_counter() - started:.0f} s", flush=True)
    last_week = Period.week("2022-W37")
    cases = [("one week, province", last_week, {}),
             ("8 weeks, province", Period(FIRST_MONDAY, last_week.last), {}),
             ("8 weeks, one block", Period(FIRST_MONDAY, last_week.last), {"group": "Khối 1"}),
             ("8 weeks, one unit", Period(FIRST_MONDAY, last_week.last),
              {"unit": unit_name(0)})]
    for name, period, scope in cases:
        print(f"| {label} | report, {name} | {best_of_three(report(store, period, **scope)):.2f}"
              f" s |", flush=True)
    hit_host = store.hosts(EVERYTHING, HostFilter(status="infected"), "id", False, 0, 1)[0]
    pages = [("list: first page", host_list(store, EVERYTHING, HostFilter())),
             ("list: sorted by hits", host_list(store, EVERYTHING, HostFilter(), "hits")),
             ("list: search an IP", host_list(store, EVERYTHING, HostFilter(search="10.7.1."))),
             ("list: one indicator", host_list(store, EVERYTHING,
                                               HostFilter(indicator="c2-7.bad.example"))),
             ("list: a unit's account, infected",
              host_list(store, Scope.of(unit_name(3)), HostFilter(status="infected"))),
             ("a computer's evidence", evidence(store, hit_host.id))]
    for name, work in pages:
        print(f"| {label} | page, {name} | {best_of_three(work):.3f} s |", flush=True)
    store.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts-per-unit", type=int, default=100)
    parser.add_argument("--hit-every", type=int, default=2, metavar="N",
                        help="one host in N is hit (default 2)")
    parser.add_argument("--sqlite-only", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="madoc-bench-report-") as tmp:
        bench("SQLite", f"sqlite:///{Path(tmp) / 'report.db'}", args.hosts_per_unit,
              args.hit_every)
    if args.sqlite_only:
        return 0
    try:
        server = PostgresServer()
    except FileNotFoundError as err:
        print(f"PostgreSQL: not installed ({err}); skipped")
        return 0
    try:
        bench("PostgreSQL", server.new_database(), args.hosts_per_unit, args.hit_every)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

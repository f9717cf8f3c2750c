#!/usr/bin/env python3
"""The national collector at national scale, on PostgreSQL.

What organisations below send is generated in the database (generate_series), in the
tables the collector keeps and with its month partitions: `--orgs` organisations
(default 100) of 20 units each, `--computers` per organisation (default 10,000: a
million in all), each active on 28 % of the days of `--days` (default 365, from
2022-01-01; about 100 M host-day rows at the defaults), one in twenty hit on its
weekday active days by one of 50 indicators. Then, best of three, the national report
(every organisation's Form 1 and Form 2, the addresses hit across them, the daily
trend) for one week and for a quarter, and one organisation's own report for a week.
Last, ingest: `--orgs` organisations post one day's batch each, all at once (a day of
their computers and hits), to a national collector (`madoc-collector run`) on the same
database, through its API.

    python tests/bench/bench_national.py [--orgs N] [--computers N] [--days N]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import sys
import time
from datetime import UTC, date, timedelta
from pathlib import Path

import aiohttp

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))

from sensor.collector.report import Period, campaign_report  # noqa: E402
from sensor.collector.store import MONTHS_FROM_DAYS, Store  # noqa: E402
from tests.collector.harness import Collector, PostgresServer  # noqa: E402

FIRST = date(2022, 1, 1)
UNITS, INDICATORS = 20, 50


def generate(store: Store, url: str, orgs: int, computers: int, days: int) -> tuple[int, int]:
    """(host-day rows, host-hit rows) after filling the organisations' tables."""
    import psycopg

    store.migrate()
    with psycopg.connect(url, autocommit=True) as db:
        for n in range(days):
            store.month_partitions((FIRST + timedelta(days=n)).isoformat())
        org = "'org' || lpad(o::text, 3, '0')"
        db.execute(f"INSERT INTO tokens (hash, kind, name, created) SELECT md5({org}), 'org', "
                   f"{org}, 0 FROM generate_series(0, {orgs - 1}) o")
        db.execute(f"INSERT INTO org_units SELECT {org}, 'unit' || lpad(u::text, 2, '0'), "
                   f"'block ' || (u % 4), NULL, NULL, 1 FROM generate_series(0, {orgs - 1}) o, "
                   f"generate_series(0, {UNITS - 1}) u")
        db.execute(f"INSERT INTO org_sensors SELECT {org}, 'gw' || u, "
                   f"'unit' || lpad(u::text, 2, '0'), 0 FROM generate_series(0, {orgs - 1}) o, "
                   f"generate_series(0, {UNITS - 1}) u")
        host = "md5(o::text || '/' || h::text)"
        unit = f"'unit' || lpad((h % {UNITS})::text, 2, '0')"
        db.execute(f"INSERT INTO org_hosts SELECT {org}, {unit}, {host}, CASE WHEN h % 40 = 0 "
                   f"THEN 'handled' ELSE 'infected' END, NULL, NULL FROM generate_series(0, "
                   f"{orgs - 1}) o, generate_series(0, {computers - 1}, 20) h")
        started, host_days, host_hits = time.perf_counter(), 0, 0
        for n in range(days):
            day = (FIRST + timedelta(days=n)).isoformat()
            common = (f"FROM generate_series(0, {orgs - 1}) o, generate_series(0, "
                      f"{computers - 1}) h WHERE (h * 7 + {n} * 13) % 100 < 28")
            db.execute(f"INSERT INTO org_sensor_days SELECT {org}, '{day}', "
                       f"'unit' || lpad(u::text, 2, '0'), 'gw' || u FROM generate_series(0, "
                       f"{orgs - 1}) o, generate_series(0, {UNITS - 1}) u")
            host_days += db.execute(f"INSERT INTO org_host_days SELECT {org}, '{day}', {unit}, "
                                    f"{host} {common}").rowcount
            if (FIRST + timedelta(days=n)).weekday() < 5:
                host_hits += db.execute(
                    f"INSERT INTO org_host_hits SELECT {org}, '{day}', {unit}, {host}, "
                    f"'c2-' || (h % {INDICATORS}) || '.bad.example', 'domain', 3 "
                    f"{common} AND h % 20 = 0").rowcount
            if n % 30 == 29:
                print(f"  {n + 1} days, {host_days:,} host-day rows, "
                      f"{time.perf_counter() - started:.0f} s", flush=True)
        started = time.perf_counter()
        db.execute(MONTHS_FROM_DAYS)
        print(f"  the monthly rollup (org_host_months) counted from the days in "
              f"{time.perf_counter() - started:.0f} s", flush=True)
        db.execute("ANALYZE")
    return host_days, host_hits


def best_of_three(work: object) -> float:
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        work()      # type: ignore[operator]
        best = min(best, time.perf_counter() - started)
    return best


async def post_all(url: str, batches: list[tuple[str, bytes]]) -> float:
    started = time.perf_counter()
    async with aiohttp.ClientSession() as session:
        async def post(token: str, body: bytes) -> None:
            async with session.post(url + "/api/v1/upstream", data=body, headers={
                    "Authorization": f"Bearer {token}", "Content-Type": "application/json"}
                    ) as answer:
                assert answer.status == 200, await answer.text()
        await asyncio.gather(*(post(token, body) for token, body in batches))
    return time.perf_counter() - started


def ingest(url: str, tmp: Path, orgs: int, computers: int) -> float:
    """Seconds for every organisation's day batch, posted at once, to be stored."""
    import orjson

    nation = Collector(tmp / "nation", database=url, max_body_bytes=64 << 20).start()
    try:
        batches = []
        for o in range(orgs):
            name = f"ingest-{o:03d}"
            token = nation.cli("tokens", "add", "--org", name).stdout.strip()
            hosts = [[f"unit{h % UNITS:02d}", hashlib.md5(f"{o}/{h}".encode()).hexdigest()]
                     for h in range(computers)]
            hits = [[unit, key, f"c2-{n % INDICATORS}.bad.example", "domain", 3]
                    for n, (unit, key) in enumerate(hosts) if n % 20 == 0]
            batches.append((token, orjson.dumps({
                "org": name, "stream": "bench", "sequence": 1, "kind": "day",
                "day": "2023-06-01", "sensors": [[f"unit{u:02d}", f"gw{u}"]
                                                 for u in range(UNITS)],
                "hosts": hosts, "hits": hits})))
        try:
            return asyncio.run(post_all(nation.url, batches))
        except AssertionError:
            log = nation.log.read_text()
            print(log[log.find("Traceback"):][:5000], file=sys.stderr)     # why it failed
            raise
    finally:
        nation.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orgs", type=int, default=100)
    parser.add_argument("--computers", type=int, default=10_000, help="per organisation")
    parser.add_argument("--days", type=int, default=365)
    args = parser.parse_args()
    server = PostgresServer()
    try:
        url = server.new_database()
        store = Store(url, UTC)
        started = time.perf_counter()
        host_days, host_hits = generate(store, url, args.orgs, args.computers, args.days)
        print(f"{args.orgs} organisations, {args.orgs * args.computers:,} computers, "
              f"{args.days} days: {host_days:,} host-day rows, {host_hits:,} host-hit rows, "
              f"generated in {time.perf_counter() - started:.0f} s", flush=True)
        week = Period.week("2022-W23")
        quarter = Period.between("2022-04-01", "2022-06-30")
        for name, period, org in (("national report, one week", week, None),
                                  ("national report, a quarter", quarter, None),
                                  ("one organisation's report, one week", week, "org001")):
            seconds = best_of_three(lambda p=period, o=org: campaign_report(store, p, org=o))
            print(f"| {name} | {seconds:.2f} s |", flush=True)
        store.close()
        import tempfile
        with tempfile.TemporaryDirectory(prefix="madoc-bench-national-") as tmp:
            seconds = ingest(url, Path(tmp), args.orgs, args.computers)
        print(f"| ingest: {args.orgs} organisations' day batches ({args.computers:,} computers "
              f"each) at once | {seconds:.2f} s |", flush=True)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

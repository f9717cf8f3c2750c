#!/usr/bin/env python3
"""Collector ingest rate, and the sensor's CPU cost of the uplink.

1. One collector process (`madoc-collector run`, SQLite WAL with synchronous=FULL;
   then PostgreSQL when Debian's server is installed) on loopback:
   - alerts: batches of 500 alerts from 20 sensors, 8 requests in flight;
   - small count updates: 1,000 sensors each sending batches of one count row and
     one host seen, 64 requests in flight.
   Load comes from this process (aiohttp client, bodies prepared beforehand).
2. The sensor: CPU seconds of `madoc-sensor replay` on the 1-million-packet bench
   capture with and without `--collector` (the collector in its own process).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))

from tests.collector.harness import Collector, PostgresServer  # noqa: E402

HOUR = 1_662_940_800


def alert(n: int) -> dict:
    host = f"10.{n % 200}.{n % 250}.{n % 240 + 1}"
    return {"ts": HOUR + n % 3600, "host_ip": host, "host_mac": None,
            "indicator": f"c2-{n % 97}.bad.example", "indicator_type": "domain",
            "match": "dns.query", "seen": f"x.c2-{n % 97}.bad.example", "outbound": True,
            "sources": ["ncsc"], "campaign": "2022", "severity": 1, "proto": 17,
            "src_ip": host, "src_port": 40000 + n % 1000, "dest_ip": "10.0.0.53",
            "dest_port": 53}


def alert_batch(sensor: str, sequence: int, size: int) -> bytes:
    alerts = [alert(sequence * size + i) for i in range(size)]
    counts = {}
    for a in alerts:
        key = (a["host_ip"], a["indicator"])
        row = counts.setdefault(key, {"host_ip": a["host_ip"], "host_mac": None, "hour": HOUR,
                                      "indicator": a["indicator"], "indicator_type": "domain",
                                      "hits": 0, "first": a["ts"], "last": a["ts"]})
        row["hits"] += 1
    return json.dumps({"sensor": sensor, "stream": "bench", "sequence": sequence,
                       "alerts": alerts, "counts": list(counts.values()), "hosts_seen": [],
                       "dropped_alerts": 0}).encode()


def count_batch(sensor: str, sequence: int) -> bytes:
    host = f"10.1.{sequence % 250}.{sequence % 200 + 1}"
    return json.dumps({"sensor": sensor, "stream": "bench", "sequence": sequence, "alerts": [],
                       "counts": [{"host_ip": host, "host_mac": None, "hour": HOUR,
                                   "indicator": "c2.bad.example", "indicator_type": "domain",
                                   "hits": 2, "first": HOUR + 1.0, "last": HOUR + 9.0}],
                       "hosts_seen": [{"host_ip": host, "host_mac": None, "hour": HOUR,
                                       "first": HOUR + 1.0, "last": HOUR + 9.0}],
                       "dropped_alerts": 0}).encode()


async def post_all(url: str, requests: list[tuple[str, bytes]], in_flight: int) -> float:
    """Seconds to post every (token, body), `in_flight` at a time; all must be 200."""
    queue = list(reversed(requests))
    connector = aiohttp.TCPConnector(limit=in_flight)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def worker() -> None:
            while queue:
                token, body = queue.pop()
                async with session.post(f"{url}/api/v1/events", data=body, headers={
                        "Authorization": f"Bearer {token}",
                        "Content-Type": "application/json"}) as answer:
                    await answer.read()
                    if answer.status != 200:
                        raise RuntimeError(f"{answer.status}: {await answer.text()}")
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(in_flight)))
        return time.perf_counter() - started


def register(collector: Collector, count: int) -> list[str]:
    """Tokens for `count` sensors, through the data-access module (the CLI is one process
    per token)."""
    from sensor.collector.store import Store

    store = Store(collector.database, collector_tz())
    store.migrate()
    store.add_unit("Bench unit", now=time.time())
    tokens = [store.add_sensor_token(f"s{n:04d}", "Bench unit", time.time())
              for n in range(count)]
    store.close()
    return tokens


def collector_tz():
    from zoneinfo import ZoneInfo
    return ZoneInfo("Asia/Ho_Chi_Minh")


def bench_collector(label: str, directory: Path, database: str | None,
                    alert_batches: int, count_batches: int) -> None:
    collector = Collector(directory, database=database, max_body_bytes=16 << 20).start()
    try:
        tokens = register(collector, 1000)
        alerts = [(tokens[n % 20], alert_batch(f"s{n % 20:04d}", n // 20 + 1, 500))
                  for n in range(alert_batches)]
        seconds = asyncio.run(post_all(collector.url, alerts, 8))
        print(f"| {label} | alerts, batches of 500, 20 sensors | {alert_batches * 500:,} alerts "
              f"in {seconds:.2f} s | {alert_batches * 500 / seconds:,.0f} alerts/s |")
        small = [(tokens[n % 1000], count_batch(f"s{n % 1000:04d}", 1000 + n // 1000))
                 for n in range(count_batches)]
        seconds = asyncio.run(post_all(collector.url, small, 64))
        print(f"| {label} | count updates, 1,000 sensors | {count_batches:,} batches in "
              f"{seconds:.2f} s | {count_batches / seconds:,.0f} batches/s |")
    finally:
        collector.stop()


def cpu_of(command: list[str]) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True,
                   cwd=ROOT)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


BATCHING_ONLY = """
import sys, time
from pathlib import Path
from sensor.support import gcpolicy
from sensor.blocklist.loader import load_blocklist
from sensor.core.pipeline import Pipeline, event_chunks
from sensor.sinks.eve import EveWriter
from sensor.sinks.counts import EventCounts
from sensor.sources.pcapfile import CaptureFile
from sensor.uplink.batch import BatchBuilder
blocklist = load_blocklist([Path(sys.argv[1])])[0]
pipeline = Pipeline(blocklist)
counts, writer = EventCounts(), EveWriter(open("/dev/null", "wb"))
builder = BatchBuilder(pipeline.detector.is_internal)
gcpolicy.settle()
spent = 0.0
events = 0

def drain():       # as the replay drains, with the uplink's batching timed
    global spent, events
    for chunk in event_chunks(pipeline.events):
        counts.add(chunk)
        writer.write(chunk)
        started = time.process_time()
        builder.add(chunk)
        builder.take()
        spent += time.process_time() - started
        events += len(chunk)
    pipeline.events.clear()

for data, records, link in CaptureFile(Path(sys.argv[2])).batches():
    pipeline.feed_batch(data, records, link)
    drain()
pipeline.finish()
drain()
builder.cut()
builder.take()
print(spent, events)
"""


def batching_cpu(rules: Path, capture: Path) -> tuple[float, int]:
    """CPU seconds the uplink adds on the packet path: turning the events into uplink
    batches where the replay does it, after the counts and the EVE writer took each
    chunk (best of 3), timed alone so that the VM's noise does not hide it."""
    runs = []
    for _ in range(3):
        out = subprocess.run([sys.executable, "-c", BATCHING_ONLY, str(rules), str(capture)],
                             capture_output=True, text=True, check=True, cwd=ROOT)
        seconds, events = out.stdout.split()
        runs.append((float(seconds), int(events)))
    return min(runs)


def bench_sensor_uplink(directory: Path) -> None:
    capture, rules = HERE / "bench-1m.pcap", HERE / "bench-rules.yaml"
    if not capture.exists():
        subprocess.run([sys.executable, str(HERE / "make_bench_pcap.py")], check=True)
    collector = Collector(directory / "sensor-bench").start()
    try:
        token_file = directory / "token"
        token_file.write_text(collector.sensor_token("bench-gw", "Bench unit"))
        base = [sys.executable, "-m", "sensor", "replay", "--rules", str(rules), "--eve",
                "/dev/null", str(capture)]
        without = min(cpu_of(base) for _ in range(2))
        with_uplink = min(cpu_of([*base, "--collector", collector.url, "--token-file",
                                  str(token_file), "--spool", str(directory / f"spool{n}.db"),
                                  "--resend"]) for n in range(2))
        _, doc = collector.get("/api/v1/sensors", collector.admin_token)
        batches = doc["sensors"][0]["batches"] // 2
        alerts = doc["sensors"][0]["alerts"] // 2
    finally:
        collector.stop()
    print(f"\nsensor, 1M-packet bench capture: replay {without:.2f} CPU s without the uplink, "
          f"{with_uplink:.2f} s with it ({batches:,} batches, {alerts:,} alerts sent): "
          f"uplink cost {100 * (with_uplink - without) / without:+.1f}% of the packet path "
          f"(within this VM's run-to-run noise)")
    seconds, events = batching_cpu(rules, capture)
    print(f"uplink batching measured alone: {seconds:.3f} CPU s for {events:,} events = "
          f"{100 * seconds / without:.1f}% of the replay's {without:.2f} CPU s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alert-batches", type=int, default=400)
    parser.add_argument("--count-batches", type=int, default=10_000)
    parser.add_argument("--no-sensor", action="store_true", help="skip the sensor part")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="madoc-bench-") as tmp:
        directory = Path(tmp)
        print("| database | load | volume | rate |\n|---|---|---|---:|")
        bench_collector("SQLite", directory / "sqlite", None, args.alert_batches,
                        args.count_batches)
        try:
            postgres = PostgresServer()
        except FileNotFoundError as err:
            print(f"| PostgreSQL | not measured: {err} | | |")
        else:
            try:
                bench_collector("PostgreSQL", directory / "pg", postgres.new_database(),
                                args.alert_batches, args.count_batches)
            finally:
                postgres.stop()
        if not args.no_sensor:
            bench_sensor_uplink(directory)
    return 0


if __name__ == "__main__":
    sys.exit(main())

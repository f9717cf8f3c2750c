"""`madoc-sensor demo`: the bundled captures → sensor → an embedded collector, on the terminal.

An embedded collector is started on loopback with a temporary SQLite file; a demo
sensor is registered (in a unit of Hải Phòng's real directory, `deploy/units.tsv`,
when it is there); the captures are replayed through the same uplink the daemon
uses; then the alerts, the sensor's per-host table, the hosts the collector
holds and the unit's campaign report for the days the captures cover are printed.
"""

from __future__ import annotations

import io
import json
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from sensor import SOURCE_TREE
from sensor.collector.cli import add_units
from sensor.collector.config import CollectorConfig
from sensor.collector.embedded import EmbeddedCollector
from sensor.collector.forms import render
from sensor.collector.report import Period, campaign_report
from sensor.collector.store import Store
from sensor.commands.replay import DEFAULT_RULES, ReplayOptions, replay
from sensor.uplink.backfill import BackfillOptions

PCAPS = SOURCE_TREE / "pcaps"
UNITS = SOURCE_TREE / "deploy" / "units.tsv"
DEMO_SENSOR = "demo-gw1"


def demo_captures() -> list[Path]:
    return sorted(p for p in PCAPS.iterdir() if p.name.endswith((".pcap", ".pcapng", ".pcap.gz")))


def _register(store: Store, tmp: Path) -> tuple[str, Path, str]:
    """Import the unit directory (when present), register the demo sensor; returns
    (unit, sensor token file, admin token)."""
    now = time.time()
    unit = "Demo unit"
    if UNITS.exists():
        unit = add_units(store, UNITS, now)[0][0]
    else:
        store.add_unit(unit, now=now)
    token_file = tmp / "sensor.token"
    token_file.write_text(store.add_sensor_token(DEMO_SENSOR, unit, now))
    return unit, token_file, store.add_admin_token("demo", now)


def _collector_hosts(url: str, admin: str) -> list[dict]:
    request = urllib.request.Request(f"{url}/api/v1/hosts",
                                     headers={"Authorization": f"Bearer {admin}"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())["hosts"]


def _report(store: Store, hosts: list[dict], unit: str) -> str:
    """The unit's campaign report (Markdown) for the days the captures cover."""
    days = sorted(h[key][:10] for h in hosts for key in ("first_seen", "last_seen"))
    if not days:
        return "(no hosts: nothing to report)\n"
    period = Period.between(days[0], days[-1])
    return render(campaign_report(store, period, unit=unit), "md").decode()


def demo() -> int:
    captures = demo_captures()
    if not captures:
        print(f"madoc-sensor: no captures in {PCAPS}; run: python pcaps/make_pcaps.py",
              file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="madoc-demo-") as tmp_name:
        tmp = Path(tmp_name)
        config = CollectorConfig(database=f"sqlite:///{tmp / 'collector.db'}",
                                 metrics_listen=None)   # nothing else on this host collides
        store = Store(config.database, config.tz, config.quiet_period_days)
        store.migrate()
        unit, token_file, admin = _register(store, tmp)
        collector = EmbeddedCollector(config, store).start()
        try:
            eve = tmp / "eve.json"
            summary = io.StringIO()
            uplink = BackfillOptions(collector.url, token_file, DEMO_SENSOR,
                                     spool=tmp / "spool.db", drain_timeout=30)
            status = replay(ReplayOptions(captures=captures, rules=[DEFAULT_RULES],
                                          eve=str(eve), uplink=uplink), summary_out=summary)
            hosts = _collector_hosts(collector.url, admin)
            report = _report(store, hosts, unit)
        finally:
            collector.stop()
        alerts = sorted((json.loads(line) for line in eve.read_text().splitlines()
                         if '"event_type":"alert"' in line), key=lambda a: a["timestamp"])
    print(f"== madoc-sensor demo: {len(captures)} captures from {PCAPS}, rules {DEFAULT_RULES}")
    print(f"\n== alerts ({len(alerts)})")
    for alert in alerts:
        madoc = alert["madoc"]
        via = f" (resolved from {madoc['resolved_from']})" if "resolved_from" in madoc else ""
        direction = "->" if madoc["outbound"] else "<-"
        print(f"{alert['timestamp']}  {madoc['host']:<15} {direction} {madoc['seen']:<28} "
              f"{madoc['match']:<13} {madoc['indicator']} [{', '.join(madoc['sources'])}]{via}")
    print("\n== sensor summary and per-host table")
    print(summary.getvalue(), end="")
    infected = [h for h in hosts if h["status"] != "clean"]
    print(f"\n== collector {collector.url} (embedded, SQLite): sensor {DEMO_SENSOR} in "
          f"unit {unit!r}; {len(hosts)} hosts seen, {len(infected)} with hits")
    print(f"{'host':<16} {'status':<9} {'hits':>5} {'indicators':>10}  first seen → last seen")
    for host in sorted(infected, key=lambda h: -h["hits"]):
        print(f"{host['ip']:<16} {host['status']:<9} {host['hits']:>5} {host['indicators']:>10}"
              f"  {host['first_seen']} → {host['last_seen']}")
    print(f"\n== campaign report for {unit!r} (madoc-collector report --unit … --from … --to …)")
    print(report)
    return status

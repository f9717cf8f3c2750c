"""A seeded collector database whose report numbers are known in advance.

Three weeks of September 2022 (2022-W37 … W39) in Hải Phòng's real unit directory,
sent through `Store.ingest` as sensors would send them:

- Sở Tài chính has two sensors. Host A1 (MAC …:01) is hit in W37 at 10.0.0.11 and in
  W38 at 10.0.0.99 (its IP changed, its MAC did not: one host). A2 is active all three
  weeks and never hit. A3 (no MAC) is hit in W37 on the second sensor, seen clean in
  W38, and marked handled by an admin on 21 September (W38). A4 is hit only on
  13 September; the first sensor keeps reporting until 28 September, past the
  seven-day quiet period, so A4 is handled without a mark.
- Sở Công Thương's one sensor reports in W37 only (silent all of W38 and W39); its
  host B1 is hit in W37 and, its sensor silent, stays infected.
- Sở Du lịch has a sensor that never reports.

`python -m tests.collector.seed sqlite:///seed.db` builds it and prints the answers.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

from sensor.collector.cli import add_units
from sensor.collector.store import EVERYTHING, HostFilter, Store

UNITS = Path(__file__).resolve().parents[2] / "deploy" / "units.tsv"
FINANCE, TRADE, TOURISM = "Sở Tài chính", "Sở Công Thương", "Sở Du lịch"
STATE_GROUP = "Khối các cơ quan quản lý nhà nước trực thuộc Ủy ban nhân dân thành phố"
MAC_A1, MAC_A2, MAC_A4 = "02:00:00:00:00:01", "02:00:00:00:00:02", "02:00:00:00:00:04"
MAC_B1 = "02:00:00:00:0b:01"
EVIL, BAD_IP = "evil.example", "198.51.100.7"
HANDLED_MARK = datetime(2022, 9, 21, 9, 0, tzinfo=UTC).timestamp()

# period → unit → (computers covered, found, handled), with A3 marked handled;
# before the mark, A3 counts as found but not handled.
EXPECTED: dict[str, dict[str, tuple[int, int, int]]] = {
    "2022-W37": {FINANCE: (4, 3, 2), TRADE: (1, 1, 0), TOURISM: (0, 0, 0)},
    "2022-W38": {FINANCE: (3, 1, 0), TRADE: (0, 0, 0), TOURISM: (0, 0, 0)},
    "2022-W39": {FINANCE: (1, 0, 0), TRADE: (0, 0, 0), TOURISM: (0, 0, 0)},
    "2022-09-12..2022-10-02": {FINANCE: (4, 3, 2), TRADE: (1, 1, 0), TOURISM: (0, 0, 0)},
}
DEPLOYED = {"2022-W37": {FINANCE, TRADE}, "2022-W38": {FINANCE}, "2022-W39": {FINANCE},
            "2022-09-12..2022-10-02": {FINANCE, TRADE}}
SILENT = {"2022-W37": {"dl-gw1"}, "2022-W38": {"ct-gw1", "dl-gw1"},
          "2022-W39": {"ct-gw1", "dl-gw1", "tc-gw2"}, "2022-09-12..2022-10-02": {"dl-gw1"}}


def at(day: int, hour: int = 10, month: int = 9) -> float:
    return datetime(2022, month, day, hour, 0, 30, tzinfo=UTC).timestamp()


class Sender:
    """Batches as a sensor's uplink builds them: seen hosts and hit counts by hour."""

    def __init__(self, store: Store, sensor: str) -> None:
        self.store, self.sensor, self.sequence = store, sensor, 0

    def send(self, seen: list[tuple[str, str | None, float]],
             hits: list[tuple[str, str | None, float, str, str, int]]) -> None:
        """seen: (ip, mac, ts); hits: (ip, mac, ts, indicator, kind, count). A hit host
        is also seen, as the sensor reports it."""
        self.sequence += 1
        rows = [*seen, *((ip, mac, ts) for ip, mac, ts, *_ in hits)]
        envelope = {
            "sensor": self.sensor, "stream": "seed", "sequence": self.sequence,
            "alerts": [], "dropped_alerts": 0,
            "hosts_seen": [{"host_ip": ip, "host_mac": mac, "hour": int(ts // 3600 * 3600),
                            "first": ts, "last": ts} for ip, mac, ts in rows],
            "counts": [{"host_ip": ip, "host_mac": mac, "hour": int(ts // 3600 * 3600),
                        "indicator": indicator, "indicator_type": kind, "hits": count,
                        "first": ts, "last": ts,
                        "matches": ["dns.query" if kind == "domain" else "flow.dest_ip"]}
                       for ip, mac, ts, indicator, kind, count in hits]}
        assert self.store.ingest(envelope, now=max(ts for _, _, ts in rows) + 60)


def seed(store: Store, mark_handled: bool = True) -> None:
    store.migrate()
    add_units(store, UNITS, at(1))
    for sensor, unit in (("tc-gw1", FINANCE), ("tc-gw2", FINANCE), ("ct-gw1", TRADE),
                         ("dl-gw1", TOURISM)):
        store.add_sensor_token(sensor, unit, at(1))
    tc1, tc2, ct1 = (Sender(store, s) for s in ("tc-gw1", "tc-gw2", "ct-gw1"))
    # W37
    tc1.send([("10.0.0.12", MAC_A2, at(12))],
             [("10.0.0.11", MAC_A1, at(12), EVIL, "domain", 5),
              ("10.0.0.14", MAC_A4, at(13), BAD_IP, "ip", 3)])
    tc2.send([], [("10.0.0.13", None, at(14), EVIL, "domain", 2)])
    ct1.send([], [("10.1.0.21", MAC_B1, at(15), BAD_IP, "ip", 4)])
    # W38
    tc1.send([("10.0.0.12", MAC_A2, at(20))],
             [("10.0.0.99", MAC_A1, at(24), EVIL, "domain", 1)])
    tc2.send([("10.0.0.13", None, at(20))], [])
    # W39: only the first sensor of Sở Tài chính reports
    tc1.send([("10.0.0.12", MAC_A2, at(28))], [])
    if mark_handled:
        mark_a3_handled(store)


def mark_a3_handled(store: Store) -> None:
    a3 = next(h for h in store.hosts(EVERYTHING, HostFilter(unit=FINANCE)) if h.ip == "10.0.0.13")
    assert store.mark_handled(a3.id, "admin", HANDLED_MARK, EVERYTHING)


def main(argv: list[str]) -> int:
    store = Store(argv[0] if argv else "sqlite:///seed.db", UTC)
    seed(store)
    for period, units in EXPECTED.items():
        print(period, "deployed:", sorted(DEPLOYED[period]), "silent:", sorted(SILENT[period]))
        for unit, (covered, found, handled) in units.items():
            print(f"  {unit}: covered {covered}, found {found}, handled {handled}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

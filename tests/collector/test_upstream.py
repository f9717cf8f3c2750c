"""Province to nation, on three real collectors: two provinces (SQLite, the seeded
province of tests/collector/seed.py and a second with more data, each with a sensor
replaying bundled captures through its uplink) report upward to a national collector
on real PostgreSQL. The nation's view of each province equals the
province's own report for a week and for a custom range; an outage of the national
collector loses and doubles nothing; a batch sent twice or a day sent again counts
once; no IP or MAC address reaches the national database unless `share` allows it."""

from __future__ import annotations

import hashlib
import json
import re
import signal
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC
from pathlib import Path
from typing import NamedTuple

import psycopg
import pytest

from sensor.collector.store import EVERYTHING, MONTHS_FROM_DAYS, HostFilter, Store, month_split
from sensor.collector.upstream import WATERMARK
from sensor.uplink.spool import Spool
from tests.collector.cutting_proxy import CuttingProxy
from tests.collector.harness import Collector, PostgresServer, http
from tests.collector.seed import (
    BAD_IP,
    EVIL,
    EXPECTED,
    MAC_A1,
    MAC_B1,
    TOURISM,
    TRADE,
    Sender,
    at,
    seed,
)
from tests.collector.test_api import batch
from tests.collector.test_scope import fetch
from tests.conftest import PCAPS, ROOT

# Weeks, a range within months, whole months (counted upstream from the monthly
# rollup), months with days at either end; 2026-W49: the replaying sensors' week.
PERIODS = ("week=2022-W37", "from=2022-09-10&to=2022-10-01", "week=2022-W38",
           "from=2022-09-01&to=2022-09-30", "from=2022-08-20&to=2022-10-05",
           "from=2022-07-01&to=2022-12-31", "week=2026-W49")
REPLAYS = {"Hải Phòng": ("hp-replay", TOURISM, ("tls", "quic")),
           "Quảng Ninh": ("qn-replay", TRADE, ("http",))}
FORM2 = ("unit", "group", "informed", "deployed", "sensors", "sensors_reporting",
         "computers_covered", "computers_found", "computers_handled")
ADDRESSES = ["10.0.0.11", "10.0.0.12", "10.0.0.13", "10.0.0.14", "10.0.0.99", "10.1.0.21",
             "10.2.0.31", "10.77.0.10", MAC_A1, MAC_B1, "02:00:00:00:0c:01"]


def replay_into(province: Collector, directory: Path, sensor: str, unit: str,
                folders: tuple[str, ...]) -> None:
    """A sensor of the province's `unit` replays the bundled captures of `folders` and
    sends what it found through its uplink."""
    token = directory / f"{sensor}.token"
    token.write_text(province.sensor_token(sensor, unit) + "\n")
    captures = sorted(p for folder in folders for p in (PCAPS / folder).glob("*.pcap"))
    run = subprocess.run([sys.executable, "-m", "sensor", "replay", "--collector", province.url,
                          "--token-file", str(token), "--spool", str(directory / "spool.db"),
                          "--drain-timeout", "60", *map(str, captures)],
                         capture_output=True, text=True, cwd=ROOT, check=False)
    assert run.returncode == 0, run.stderr


def province_below(nation: Collector, name: str, directory: Path,
                   share_addresses: bool = False, url: str | None = None) -> Collector:
    """A province's collector (not started) whose upstream is `nation` (reached at `url`
    when given: a proxy), with a token made there for it."""
    token = nation.cli("tokens", "add", "--org", name).stdout.strip()
    directory.mkdir()
    (directory / "upstream.token").write_text(token + "\n")
    share = ", share: {addresses: true}" if share_addresses else ""
    return Collector(directory / "collector", extra=(
        f"upstream: {{url: '{url or nation.url}', org: '{name}', "
        f"token_file: {directory / 'upstream.token'}, "
        f"secret_file: {directory / 'upstream.secret'}, "
        f"spool: {directory / 'upstream-spool.db'}, interval_seconds: 3600{share}}}\n"))


@pytest.fixture
def levels(tmp_path: Path, postgres: PostgresServer) -> Iterator[dict[str, Collector]]:
    nation = Collector(tmp_path / "nation", database=postgres.new_database()).start()
    provinces = {}
    for name, extra_data in (("Hải Phòng", False), ("Quảng Ninh", True)):
        province = province_below(nation, name, tmp_path / name.replace(" ", "_"))
        store = Store(province.database, UTC)
        seed(store)
        if extra_data:      # a third sensor: a tourism host hit in W38 at another MAC
            store.add_sensor_token("dl-gw2", TOURISM, at(1))
            Sender(store, "dl-gw2").send([], [("10.2.0.31", "02:00:00:00:0c:01", at(19),
                                               BAD_IP, "ip", 9)])
        provinces[name] = province.start()
        sensor, unit, folders = REPLAYS[name]
        replay_into(province, tmp_path / name.replace(" ", "_"), sensor, unit, folders)
    yield {"nation": nation, **provinces}
    for collector in (nation, *provinces.values()):
        collector.stop()


class Sent(NamedTuple):
    code: int
    output: str
    spooled: int        # batches spooled by this send
    waiting: int        # left in the spool when it gave up or finished


SENT = re.compile(r"^(\d+) batch\(es\) spooled; \d+ sent \(\d+ already stored\), (\d+) waiting",
                  re.M)


def send(province: Collector, timeout: float = 30) -> Sent:
    """`upstream send`, its exit status and the figures of its one line of output."""
    result = province.cli("upstream", "send", "--timeout", str(timeout), check=False)
    found = SENT.search(result.stdout)
    assert found, result.stdout + result.stderr
    return Sent(result.returncode, result.stdout + result.stderr, int(found[1]), int(found[2]))


def form2(collector: Collector, query: str) -> list[tuple]:
    status, doc = collector.get(f"/api/v1/report?{query}", collector.admin_token)
    assert status == 200, doc
    return [tuple(unit[k] for k in FORM2) for unit in doc["form2"]]


def assert_nation_agrees(levels: dict[str, Collector]) -> None:
    nation = levels["nation"]
    for name, province in levels.items():
        if name == "nation":
            continue
        org = urllib.parse.quote(name)
        for period in PERIODS:
            own = form2(province, period)
            assert form2(nation, f"org={org}&{period}") == own, (name, period)
            _, whole = nation.get(f"/api/v1/report?{period}", nation.admin_token)
            [figures] = [o for o in whole["orgs"] if o["org"] == name]
            _, mine = province.get(f"/api/v1/report?{period}", province.admin_token)
            assert (figures["informed"], figures["deployed"]) == (
                mine["form1"]["informed"], mine["form1"]["deployed"])
            assert [figures[k] for k in ("computers_covered", "computers_found",
                                         "computers_handled")] == [
                mine["totals"][k] for k in ("computers_covered", "computers_found",
                                            "computers_handled")]


def test_the_nation_sees_each_province_as_it_sees_itself(levels: dict[str, Collector]) -> None:
    for name in ("Hải Phòng", "Quảng Ninh"):
        sent = send(levels[name])
        assert sent.code == 0 and sent.waiting == 0, sent.output
    for name, (_, unit, _) in REPLAYS.items():      # the replaying sensors' computer
        [row] = [r for r in form2(levels[name], "week=2026-W49") if r[0] == unit]
        assert (row[5], row[6], row[7]) == (1, 1, 1), (name, row)
    assert_nation_agrees(levels)
    _, whole = levels["nation"].get("/api/v1/report?week=2022-W37",
                                    levels["nation"].admin_token)
    assert [(o["org"], o["silent"]) for o in whole["orgs"]] == [("Hải Phòng", False),
                                                               ("Quảng Ninh", False)]
    assert [(i["indicator"], i["orgs"], i["computers"]) for i in whole["org_indicators"]] == [
        (BAD_IP, 2, 4), (EVIL, 2, 4)]       # A4, B1 / A1, A3 in each province; 14 hits each
    status, page = fetch(levels["nation"].url + "/ui/?week=2022-W37",
                         cookie=levels["nation"].admin_token)
    assert status == 200 and page.count(b'data-key="H\xe1\xba\xa3i Ph\xc3\xb2ng"') == 1
    assert b'id="chart-orgs"' in page
    _, later = levels["nation"].get("/api/v1/report?week=2022-W40",
                                    levels["nation"].admin_token)
    assert all(o["silent"] for o in later["orgs"])      # nothing sent for that week

    # staff of a province mark a computer handled: the nation's handled count follows
    province = levels["Quảng Ninh"]
    _, hosts = province.get("/api/v1/hosts?status=infected", province.admin_token)
    host = next(h for h in hosts["hosts"] if h["ip"] == "10.1.0.21")
    assert province.post(f"/api/v1/hosts/{host['id']}/handled", province.admin_token,
                         {"note": "đã gỡ mã độc"})[0] == 200
    assert send(province).spooled == 1      # the status, no day changed
    assert_nation_agrees(levels)
    assert send(province).spooled == 0      # nothing new: nothing sent


def test_an_outage_above_loses_and_doubles_nothing(levels: dict[str, Collector]) -> None:
    nation, province = levels["nation"], levels["Hải Phòng"]
    assert send(province)[0] == 0
    nation.kill()
    # while the nation is down, a new sensor reports hits and staff mark a host
    sensor = province.sensor_token("tc-gw3")
    assert province.post("/api/v1/events", sensor, batch("tc-gw3", 1))[0] == 200
    store = Store(province.database, UTC)
    assert store.mark_handled(store.hosts(EVERYTHING, HostFilter(status="infected"))[0].id,
                              "admin", at(28), EVERYTHING, "x")
    stalled = send(province, timeout=2)
    assert stalled.code == 1 and stalled.waiting > 0, stalled.output
    nation.start()
    assert send(province)[0] == 0
    assert send(levels["Quảng Ninh"])[0] == 0
    assert_nation_agrees(levels)

    # every day sent again (a crash between spooling and bookkeeping does this)
    Store(province.database, UTC).set_upstream_value(WATERMARK, "0")
    again = send(province)
    assert again.code == 0 and again.spooled > 0, again.output
    assert_nation_agrees(levels)

    # the answer to a batch was lost: the same batch arrives again
    spool = Spool(province.directory.parent / "upstream-spool-copy.db", "Hải Phòng",
                  source="org", mergeable=False)
    spool.append([{"kind": "day", "day": "2022-09-13", "sensors": [], "hosts": [],
                   "hits": []}])      # the only day A4 was seen: it leaves the month too
    sequence, body = spool.head()
    token = (province.directory.parent / "upstream.token").read_text().strip()
    for duplicate in (False, True):
        status, doc = http("POST", nation.url + "/api/v1/upstream", token, raw=body,
                           headers={"Content-Encoding": "gzip"})
        assert (status, doc["duplicate"]) == (200, duplicate)
    # ... and that empty day replaced the real one, until the real state is sent again
    for period in ("week=2022-W37", "from=2022-09-01&to=2022-09-30"):
        assert form2(nation, f"org={urllib.parse.quote('Hải Phòng')}&{period}") != \
            form2(province, period)
    Store(province.database, UTC).set_upstream_value(WATERMARK, "0")
    assert send(province)[0] == 0
    assert_nation_agrees(levels)


def test_only_what_share_allows_leaves_the_province(levels: dict[str, Collector],
                                                   postgres: PostgresServer) -> None:
    for name in ("Hải Phòng", "Quảng Ninh"):
        assert send(levels[name])[0] == 0
    with psycopg.connect(levels["nation"].database) as db:
        tables = [r[0] for r in db.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()]
        stored = json.dumps([db.execute(f"SELECT * FROM {table}").fetchall()
                             for table in tables], default=str)
    assert "org_host_hits" in tables
    with psycopg.connect(levels["nation"].database) as db:
        months = {r[0] for r in db.execute(
            "SELECT inhrelid::regclass::text FROM pg_inherits "
            "WHERE inhparent = 'org_host_hits'::regclass").fetchall()}
        in_parent_only = db.execute("SELECT COUNT(*) FROM ONLY org_host_hits").fetchone()[0]
    assert {"org_host_hits_2022_09"} <= months and in_parent_only == 0   # by month
    held = set(ADDRESSES)                   # and every address the provinces hold
    for name in ("Hải Phòng", "Quảng Ninh"):
        _, doc = levels[name].get("/api/v1/hosts", levels[name].admin_token)
        held |= {h["ip"] for h in doc["hosts"]} | {h["mac"] for h in doc["hosts"] if h["mac"]}
    assert len(held) > len(ADDRESSES)       # the replayed computer's MAC among them
    for address in held:
        assert address not in stored, address
    assert BAD_IP in stored                 # indicators go up; computers' addresses do not


def test_an_organisation_that_shares_addresses_sends_them(tmp_path: Path,
                                                          postgres: PostgresServer) -> None:
    """`share: {addresses: true}`: the hosts' statuses go up with their last IP and MAC,
    and the figures are the same as without."""
    nation = Collector(tmp_path / "nation", database=postgres.new_database()).start()
    province = province_below(nation, "Hải Phòng", tmp_path / "hp", share_addresses=True)
    seed(Store(province.database, UTC))
    province.start()
    try:
        assert send(province)[0] == 0
        with psycopg.connect(nation.database) as db:
            shared = db.execute("SELECT unit, status, ip, mac FROM org_hosts "
                                "WHERE ip IS NOT NULL ORDER BY ip").fetchall()
        assert ("Sở Công Thương", "infected", "10.1.0.21", MAC_B1) in shared
        assert {ip for _, _, ip, _ in shared} >= {"10.0.0.99", "10.0.0.13", "10.1.0.21"}
        for query in PERIODS:
            assert form2(nation, f"{query}&org={urllib.parse.quote('Hải Phòng')}") == \
                form2(province, query)
    finally:
        province.stop()
        nation.stop()


def test_an_organisations_token_reports_only_for_it(levels: dict[str, Collector]) -> None:
    nation = levels["nation"]
    token = (levels["Hải Phòng"].directory.parent / "upstream.token").read_text().strip()
    batch = {"org": "Quảng Ninh", "stream": "x", "sequence": 1, "kind": "status",
             "directory": [], "sensors": [], "hosts": []}
    status, doc = nation.post("/api/v1/upstream", token, batch)
    assert status == 403 and "Hải Phòng" in doc["error"]
    sensor = nation.sensor_token("gw-nation")
    assert nation.post("/api/v1/upstream", sensor, batch)[0] == 403
    for bad, field in (({"kind": "day", "day": "2022-13-01"}, "day"),
                       ({"kind": "status", "hosts": [["u", "not-a-hash", "infected", None,
                                                       None]]}, "hosts[0].host"),
                       ({"kind": "gossip"}, "kind")):
        status, doc = nation.post("/api/v1/upstream", token,
                                  {**batch, "org": "Hải Phòng", **bad})
        assert status == 400 and field in doc["error"], doc


def test_a_period_splits_into_whole_months_and_the_days_around_them() -> None:
    assert month_split("2022-04-01", "2022-06-30") == (("2022-04", "2022-06"), [])
    assert month_split("2022-06-06", "2022-06-12") == (None, [("2022-06-06", "2022-06-12")])
    assert month_split("2022-08-20", "2022-10-05") == (
        ("2022-09", "2022-09"), [("2022-08-20", "2022-08-31"), ("2022-10-01", "2022-10-05")])
    assert month_split("2022-12-15", "2023-02-28") == (
        ("2023-01", "2023-02"), [("2022-12-15", "2022-12-31")])
    assert month_split("2022-01-31", "2022-02-01") == (None, [("2022-01-31", "2022-02-01")])


def test_the_months_kept_at_ingest_equal_the_months_counted_from_the_days(
        backend: str) -> None:
    """Days sent, sent again with more, and with less (a computer gone from its only
    day): the monthly rollup kept batch by batch equals the one the schema migration
    counts from the day tables."""
    store = Store(backend, UTC)
    store.migrate()
    sequence = iter(range(1, 100))

    def day(org: str, when: str, hosts: list[str], hit: list[str]) -> None:
        assert store.ingest_upstream(org, {
            "stream": "s", "sequence": next(sequence), "kind": "day", "day": when,
            "sensors": [["u", "gw"]], "hosts": [["u", h] for h in hosts],
            "hits": [["u", h, EVIL, "domain", 1] for h in hit]}, 0.0)

    day("a", "2022-09-12", ["h1", "h2"], ["h1"])
    day("a", "2022-09-13", ["h3"], ["h3"])
    day("a", "2022-10-01", ["h1"], [])
    day("b", "2022-09-12", ["h1"], [])
    day("a", "2022-09-12", ["h1", "h2", "h4"], ["h1", "h2"])     # again, with more
    day("a", "2022-09-13", [], [])                                # h3's only day, emptied
    kept = store._execute("SELECT * FROM org_host_months ORDER BY 1, 2, 3, 4").fetchall()
    store._execute("DELETE FROM org_host_months")
    store._execute(MONTHS_FROM_DAYS)
    assert store._execute("SELECT * FROM org_host_months ORDER BY 1, 2, 3, 4").fetchall() == kept
    assert [tuple(row) for row in kept] == [
        ("a", "2022-09", "u", "h1", 1, 1), ("a", "2022-09", "u", "h2", 1, 1),
        ("a", "2022-09", "u", "h4", 1, 0), ("a", "2022-10", "u", "h1", 1, 0),
        ("b", "2022-09", "u", "h1", 1, 0)]


def test_several_national_collectors_share_one_database(tmp_path: Path,
                                                        postgres: PostgresServer) -> None:
    """Two national collectors on one PostgreSQL database, as behind a load balancer:
    the same batch posted to both at once is stored once; the days of one month posted
    through both at once leave the month's computers as counted from the days; both
    answer the same report."""
    database = postgres.new_database()
    first = Collector(tmp_path / "one", database=database).start()
    second = Collector(tmp_path / "two", database=database).start()
    try:
        token = first.cli("tokens", "add", "--org", "Hải Phòng").stdout.strip()

        def day(sequence: int, when: str, hosts: range) -> dict:
            keys = [hashlib.md5(str(h).encode()).hexdigest() for h in hosts]
            return {"org": "Hải Phòng", "stream": "s", "sequence": sequence, "kind": "day",
                    "day": when, "sensors": [["Sở Tài chính", "gw"]],
                    "hosts": [["Sở Tài chính", k] for k in keys],
                    "hits": [["Sở Tài chính", k, EVIL, "domain", 1] for k in keys[:1]]}

        def post(collector_and_batch: tuple[Collector, dict]) -> tuple[int, dict]:
            collector, body = collector_and_batch
            return collector.post("/api/v1/upstream", token, body)

        same = day(1, "2022-09-01", range(0, 3))
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(post, [(first, same), (second, same)] * 4))
        assert sorted(doc["duplicate"] for _, doc in answers) == [False] + [True] * 7
        month = [day(n + 2, f"2022-09-{n + 2:02d}", range(n, n + 3)) for n in range(20)]
        with ThreadPoolExecutor(10) as pool:
            answers = list(pool.map(post, [((first, second)[n % 2], batch)
                                           for n, batch in enumerate(month)]))
        assert {status for status, _ in answers} == {200}
        query = f"org={urllib.parse.quote('Hải Phòng')}&from=2022-09-01&to=2022-09-30"
        assert form2(first, query) == form2(second, query)
        [row] = [r for r in form2(first, query) if r[0] == "Sở Tài chính"]
        assert (row[6], row[7]) == (22, 20)       # computers 0…21; hit: the first of each day
        with psycopg.connect(database) as db:
            kept = db.execute("SELECT * FROM org_host_months ORDER BY 1, 2, 3, 4").fetchall()
            db.execute("DELETE FROM org_host_months")
            db.execute(MONTHS_FROM_DAYS)
            assert db.execute("SELECT * FROM org_host_months ORDER BY 1, 2, 3, 4"
                              ).fetchall() == kept
            db.rollback()
    finally:
        first.stop()
        second.stop()


HEALTH = "Sở Y tế"
HOSPITALS = ("Bệnh viện Việt Tiệp", "Bệnh viện Kiến An")


def test_a_departments_collector_rolls_up_into_its_province(tmp_path: Path,
                                                           postgres: PostgresServer) -> None:
    """Three levels: Sở Y tế runs its own collector for its two hospitals and reports to
    the province as an organisation; the province's directory has Sở Y tế as a unit, so
    the hospitals join that unit's row as its sub-units, in the province's totals and in
    what the province sends the nation, whose view of the province still equals the
    province's own report."""
    nation = Collector(tmp_path / "nation", database=postgres.new_database()).start()
    province = province_below(nation, "Hải Phòng", tmp_path / "hp")
    seed(Store(province.database, UTC))
    province.start()
    department = province_below(province, HEALTH, tmp_path / "yt")
    store = Store(department.database, UTC)
    store.migrate()
    for n, hospital in enumerate(HOSPITALS):
        store.add_unit(hospital, "Bệnh viện", now=at(1))
        store.add_sensor_token(f"bv{n}-gw", hospital, at(1))
    first, second = Sender(store, "bv0-gw"), Sender(store, "bv1-gw")
    first.send([("10.8.0.2", None, at(12)), ("10.8.0.3", None, at(20))],
               [("10.8.0.4", None, at(13), EVIL, "domain", 2)])
    second.send([("10.8.1.2", None, at(14))], [("10.8.1.3", None, at(15), BAD_IP, "ip", 1)])
    department.start()                      # which sends what it holds at start
    try:
        assert send(department)[0] == 0
        _, report = province.get("/api/v1/report?week=2022-W37", province.admin_token)
        units = {u["unit"]: u for u in report["form2"]}
        viet_tiep = units[f"{HEALTH} / {HOSPITALS[0]}"]
        assert (viet_tiep["parent"], viet_tiep["computers_covered"],
                viet_tiep["computers_found"]) == (HEALTH, 2, 1)    # .3 was seen in W38
        assert units[HEALTH]["with_subunits"]["computers_covered"] == 4
        assert units[HEALTH]["with_subunits"]["computers_found"] == 2
        names = [u["unit"] for u in report["form2"]]
        assert names[names.index(HEALTH) + 1].startswith(f"{HEALTH} / ")
        assert viet_tiep["department"] == HEALTH and units[HEALTH]["department"] is None
        status, page = fetch(province.url + "/ui/?week=2022-W37", cookie=province.admin_token)
        assert status == 200 and viet_tiep["unit"].encode() in page
        assert urllib.parse.quote(viet_tiep["unit"], safe="").encode() not in page  # no link
        assert urllib.parse.quote(HEALTH, safe="").encode() in page
        own = EXPECTED["2022-W37"].values()     # the province's own units (seed.py)
        assert report["totals"]["computers_covered"] == sum(c for c, _, _ in own) + 4
        assert report["totals"]["computers_found"] == sum(f for _, f, _ in own) + 2
        assert report["form1"]["informed"] == 73 + 2

        assert send(province)[0] == 0
        org = urllib.parse.quote("Hải Phòng")
        for period in ("week=2022-W37", "week=2022-W38", "from=2022-09-01&to=2022-09-30"):
            assert form2(nation, f"org={org}&{period}") == form2(province, period), period
        _, above = nation.get(f"/api/v1/report?org={org}&week=2022-W37", nation.admin_token)
        assert {u["unit"]: u["parent"] for u in above["form2"]}[viet_tiep["unit"]] == HEALTH

        # the department's later day goes up through the province
        second.send([], [("10.8.1.9", None, at(21), EVIL, "domain", 1)])
        assert send(department)[0] == 0
        assert send(province).spooled > 0
        assert form2(nation, f"org={org}&week=2022-W38") == form2(province, "week=2022-W38")
    finally:
        department.stop()
        province.stop()
        nation.stop()


def test_the_nation_killed_during_a_transfer_loses_and_doubles_nothing(
        tmp_path: Path, postgres: PostgresServer) -> None:
    """Days of 20,000 computers each go up while the way to the national collector
    breaks, at points a proxy between the two makes exact: the nation frozen with the
    whole batch sent to it and unanswered, then killed and restarted; the connection cut
    64 KiB into a batch's body; the connection cut after a whole batch went up, as the
    answer starts back (stored above, its acknowledgement lost). The province retries
    each time. The nation ends with every day once and the province's own figures."""
    nation = Collector(tmp_path / "nation", database=postgres.new_database(),
                       max_body_bytes=16 << 20).start()
    proxy = CuttingProxy(nation.port)
    province = province_below(nation, "Hải Phòng", tmp_path / "hp", url=proxy.url)
    store = Store(province.database, UTC)
    seed(store)
    store.add_sensor_token("tc-gw9", TOURISM, at(1))

    def busy_day(day: int) -> None:
        """A sensor's batch of the day's 20,000 computers, arriving now."""
        hour = int(at(day) // 3600 * 3600)
        assert store.ingest({
            "sensor": "tc-gw9", "stream": "busy", "sequence": day, "alerts": [],
            "dropped_alerts": 0, "counts": [],
            "hosts_seen": [{"host_ip": f"10.50.{n // 250}.{n % 250}", "host_mac": None,
                            "hour": hour, "first": at(day), "last": at(day)}
                           for n in range(20_000)]}, now=time.time())

    def sending() -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "sensor.collector", "-c",
                                 str(province.config), "upstream", "send", "--timeout", "60"],
                                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    busy_day(16)
    assert send(province)[0] == 0
    try:
        busy_day(17)                    # the batch reaches a frozen nation, which dies
        assert nation.process is not None
        nation.process.send_signal(signal.SIGSTOP)
        passed = proxy.requests_passed
        frozen = sending()
        deadline = time.monotonic() + 60
        while proxy.requests_passed == passed and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proxy.requests_passed > passed and frozen.poll() is None  # sent, unanswered
        nation.kill()
        nation.start()
        assert frozen.wait(timeout=90) == 0, frozen.stdout.read() if frozen.stdout else ""
        for day, kind, arming in ((18, "body", {"after_body_bytes": 64 << 10}),
                                  (19, "answer", {"before_answer": True})):
            busy_day(day)
            proxy.arm(**arming)
            cut = sending()
            assert cut.wait(timeout=90) == 0, cut.stdout.read() if cut.stdout else ""
            assert proxy.cuts[-1].kind == kind, proxy.cuts
        body, answer = proxy.cuts
        assert body.body_bytes == 64 << 10 < body.content_length     # cut mid-batch
        assert answer.body_bytes == answer.content_length > 64 << 10   # a day's whole batch
        assert send(province)[0] == 0
        province.start()
        org = urllib.parse.quote("Hải Phòng")
        for period in ("week=2022-W37", "week=2022-W38", "from=2022-09-01&to=2022-09-30"):
            assert form2(nation, f"org={org}&{period}") == form2(province, period), period
        with psycopg.connect(nation.database) as db:
            rows = dict(db.execute("SELECT day, COUNT(*) FROM org_host_days WHERE day "
                                   "BETWEEN '2022-09-16' AND '2022-09-19' GROUP BY day"
                                   ).fetchall())
        assert rows == {f"2022-09-{d}": 20_000 for d in (16, 17, 18, 19)}
    finally:
        province.stop()
        nation.stop()
        proxy.close()

"""The computer list and a computer's evidence, on a real collector holding the seeded
province (tests/collector/seed.py): filters, search, sorting, paging and the CSV of
`GET /hosts` and the staff page; the evidence and status timeline of `GET /hosts/{id}`."""

from __future__ import annotations

import csv
import io
import re
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from sensor.collector.evidence import Action, status_timeline
from sensor.collector.store import Store
from tests.collector.harness import Collector
from tests.collector.seed import BAD_IP, EVIL, FINANCE, MAC_B1, STATE_GROUP, TRADE, seed
from tests.collector.test_scope import fetch

DAY = 86400


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collector]:
    collector = Collector(tmp_path_factory.mktemp("hosts") / "collector")
    seed(Store(collector.database, UTC))
    yield collector.start()
    collector.stop()


def ips(site: Collector, **query: str) -> list[str]:
    status, doc = site.get("/api/v1/hosts?" + urllib.parse.urlencode(query), site.admin_token)
    assert status == 200, doc
    return [h["ip"] for h in doc["hosts"]]


def test_filters_and_search_narrow_the_list(site: Collector) -> None:
    everyone = {"10.0.0.99", "10.0.0.12", "10.0.0.13", "10.0.0.14", "10.1.0.21"}
    assert set(ips(site)) == everyone               # A1 is listed at its latest IP
    assert set(ips(site, group=STATE_GROUP)) == everyone
    assert set(ips(site, unit=TRADE)) == {"10.1.0.21"}
    assert ips(site, sensor="tc-gw2") == ["10.0.0.13"]
    assert set(ips(site, status="handled")) == {"10.0.0.13", "10.0.0.14"}   # marked; quiet
    assert set(ips(site, status="infected")) == {"10.0.0.99", "10.1.0.21"}
    assert set(ips(site, indicator=EVIL)) == {"10.0.0.99", "10.0.0.13"}
    assert ips(site, search=MAC_B1[-5:].upper()) == ["10.1.0.21"]      # case-insensitive
    assert set(ips(site, search="evil.")) == {"10.0.0.99", "10.0.0.13"}
    assert ips(site, search="10.0.0.1_") == []      # LIKE's wildcards are plain text
    assert ips(site, unit=TRADE, indicator=EVIL) == []
    for bad in ("sort=password", "order=up", "offset=-1", "limit=0", "status=gone"):
        status, doc = site.get(f"/api/v1/hosts?{bad}", site.admin_token)
        assert status == 400 and bad.split("=")[0] in doc["error"], doc


def test_sorting_and_paging_walk_the_whole_list_once(site: Collector) -> None:
    status, doc = site.get("/api/v1/hosts?sort=hits&order=desc", site.admin_token)
    hits = [h["hits"] for h in doc["hosts"]]
    assert hits == sorted(hits, reverse=True) and doc["total"] == 5
    pages = [ips(site, sort="ip", limit="2", offset=str(offset)) for offset in (0, 2, 4)]
    assert [len(p) for p in pages] == [2, 2, 1]
    walked = [ip for page in pages for ip in page]
    assert walked == sorted(walked) and len(set(walked)) == 5
    _, doc = site.get("/api/v1/hosts?limit=2&offset=4", site.admin_token)
    assert doc["total"] == 5 and len(doc["hosts"]) == 1


def test_the_csv_is_the_filtered_list(site: Collector) -> None:
    for url, token, cookie in ((f"{site.url}/api/v1/hosts?format=csv&unit=", site.admin_token,
                                None),
                               (f"{site.url}/ui/hosts.csv?limit=1&unit=", None,
                                site.admin_token)):
        status, body = fetch(url + urllib.parse.quote(FINANCE), token, cookie)
        assert status == 200
        rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
        assert {r["ip"] for r in rows} == {"10.0.0.99", "10.0.0.12", "10.0.0.13", "10.0.0.14"}
        marked = next(r for r in rows if r["ip"] == "10.0.0.13")
        assert (marked["status"], marked["handled_by"]) == ("handled", "admin")
        assert re.fullmatch(r"\d\d/\d\d/\d{4} \d\d:\d\d", marked["last_hit"])


def test_the_page_filters_sorts_and_pages(site: Collector) -> None:
    query = urllib.parse.urlencode({"group": STATE_GROUP, "sort": "hits", "order": "desc",
                                    "limit": "2"})
    status, body = fetch(f"{site.url}/ui/hosts?{query}", cookie=site.admin_token)
    page = body.decode()
    assert status == 200 and "5 máy tính" in page
    assert re.findall(r'data-ip="([^"]+)"', page) == ["10.0.0.99", "10.1.0.21"]  # 6, 4 hits
    assert 'id="next"' in page and 'id="prev"' not in page
    assert "offset=2" in re.search(r'id="next" href="([^"]+)"', page)[1]


def evidence(site: Collector, ip: str) -> dict:
    [host_id] = [h["id"] for h in site.get("/api/v1/hosts", site.admin_token)[1]["hosts"]
                 if h["ip"] == ip]
    status, doc = site.get(f"/api/v1/hosts/{host_id}", site.admin_token)
    assert status == 200
    return doc


def test_a_computers_evidence(site: Collector) -> None:
    a1 = evidence(site, "10.0.0.99")
    assert [(a["ip"], a["sensor"]) for a in a1["addresses"]] == [
        ("10.0.0.11", "tc-gw1"), ("10.0.0.99", "tc-gw1")]          # its IP changed
    [seen] = a1["evidence"]
    assert (seen["indicator"], seen["hits"], seen["matches"]) == (EVIL, 6, ["dns.query"])
    assert seen["hits_by_day"] == {"2022-09-12": 5, "2022-09-24": 1}
    assert seen["first"] == "2022-09-12T17:00:30+07:00"
    assert [(c["status"], c["why"]) for c in a1["timeline"]] == [
        ("infected", "first_hit"), ("handled", "quiet_period"),
        ("infected", "hit_after_handled")]          # 12 days without a hit, then one
    a3 = evidence(site, "10.0.0.13")
    assert [(c["status"], c["why"], c["by"]) for c in a3["timeline"]] == [
        ("infected", "first_hit", None), ("handled", "marked", "admin")]
    assert [(a["action"], a["by"]) for a in a3["actions"]] == [("handled", "admin")]
    a4 = evidence(site, "10.0.0.14")
    assert a4["evidence"][0]["indicator"] == BAD_IP
    assert [c["why"] for c in a4["timeline"]] == ["first_hit", "quiet_period"]
    assert a4["timeline"][1]["ts"] == "2022-09-20T17:00:30+07:00"   # 7 days after its hit


def test_a_hit_after_a_mark_the_same_day_makes_it_infected_again() -> None:
    noon = datetime(2022, 9, 12, 12, tzinfo=UTC).timestamp()
    rows = [("2022-09-12", EVIL, "domain", 3, noon - 3600, noon + 3600)]
    timeline = status_timeline(rows, [Action(noon, "handled", "it", "đã gỡ")], None, 7 * DAY)
    assert [(c.ts - noon, c.status, c.why) for c in timeline] == [
        (-3600, "infected", "first_hit"), (0, "handled", "marked"),
        (3600, "infected", "hit_after_handled")]
    assert status_timeline([], [Action(noon, "handled", "it", "")], None, 7 * DAY) == []
    marked_after = status_timeline(rows, [Action(noon + 7200, "handled", "it", "")],
                                   noon + 30 * DAY, 7 * DAY)
    assert [c.why for c in marked_after] == ["first_hit", "marked"]

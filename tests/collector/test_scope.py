"""Staff accounts scoped to a unit or a block, on a real collector: every API endpoint and
every page, asked by each account for everything there is, answers only with its own
units' computers, sensors, indicators and report, and treats another unit's host as one
that does not exist. A leak is looked for in the bytes of every answer (JSON, HTML, CSV,
Markdown, and the XML inside DOCX and XLSX): no other unit's name, address or sensor."""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC

import pytest

from sensor.collector.store import Store
from tests.collector.harness import Collector, http
from tests.collector.seed import (
    BAD_IP,
    FINANCE,
    MAC_B1,
    STATE_GROUP,
    TOURISM,
    TRADE,
    UNITS,
    Sender,
    at,
    seed,
)

DISTRICT_GROUP = "Đảng ủy, Ủy ban nhân dân các quận, huyện"
DISTRICT = next(line.split("\t")[1].strip() for line in UNITS.read_text().splitlines()
                if line.startswith(DISTRICT_GROUP + "\t"))
# what identifies each unit's data in an answer: its name, its hosts' addresses, its sensors
MARKS = {FINANCE: [FINANCE, "10.0.0.11", "10.0.0.13", "10.0.0.14", "tc-gw1", "tc-gw2"],
         TRADE: [TRADE, "10.1.0.21", MAC_B1, "ct-gw1"],
         TOURISM: [TOURISM, "dl-gw1"],
         DISTRICT: [DISTRICT, "10.9.0.5", "hb-gw1"]}
REPORT_FORMATS = ("json", "md", "csv", "docx", "xlsx")


@dataclass
class Account:
    name: str
    token: str
    units: set[str]             # the units it may see

    @property
    def foreign(self) -> list[str]:
        return [mark for unit, marks in MARKS.items() if unit not in self.units
                for mark in marks]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collector]:
    collector = Collector(tmp_path_factory.mktemp("scope") / "collector")
    store = Store(collector.database, UTC)
    seed(store)
    store.add_sensor_token("hb-gw1", DISTRICT, at(1))
    Sender(store, "hb-gw1").send([], [("10.9.0.5", None, at(13), BAD_IP, "ip", 7)])
    yield collector.start()
    collector.stop()


@pytest.fixture(scope="module")
def accounts(site: Collector) -> list[Account]:
    def token(name: str, *scope: str) -> str:
        return site.cli("tokens", "add", "--admin", name, *scope).stdout.strip()
    return [Account("province", site.admin_token, set(MARKS)),
            Account("finance", token("it-taichinh", "--unit", FINANCE), {FINANCE}),
            Account("block", token("khoi-qlnn", "--group", STATE_GROUP),
                    {FINANCE, TRADE, TOURISM}),
            Account("district", token("it-quan", "--unit", DISTRICT), {DISTRICT})]


def fetch(url: str, token: str | None = None, cookie: str | None = None,
          data: bytes | None = None) -> tuple[int, bytes]:
    """(status, body) of one request, the body unzipped to its XML for DOCX and XLSX."""
    headers = {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if cookie:
        headers["Cookie"] = f"madoc_token={cookie}"

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            return None
    request = urllib.request.Request(url, data=data, headers=headers,
                                     method="POST" if data is not None else "GET")
    try:
        with urllib.request.build_opener(NoRedirect).open(request, timeout=30) as answer:
            status, body = answer.status, answer.read()
    except urllib.error.HTTPError as err:
        status, body = err.code, err.read()
    if body[:2] == b"PK":
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            body = b"".join(archive.read(n) for n in archive.namelist() if n.endswith(".xml"))
    return status, body


def host_ids(site: Collector) -> dict[int, str]:
    """Every host's id and unit, as the province admin reads them."""
    status, doc = site.get("/api/v1/hosts?limit=1000", site.admin_token)
    assert status == 200
    return {h["id"]: h["unit"] for h in doc["hosts"]}


def assert_no_leak(account: Account, what: str, body: bytes) -> None:
    text = body.decode("utf-8", "replace")
    for mark in account.foreign:
        assert mark not in text, f"{account.name}: {what} shows {mark!r}"


def test_tokens_are_scoped_to_a_directory_unit_or_block(site: Collector,
                                                        accounts: list[Account]) -> None:
    listing = site.cli("tokens", "list").stdout
    assert f"block: {STATE_GROUP}"[:28] in listing and "it-taichinh" in listing
    for args, error in ((("--unit", "Sở Không Có"), "not in the unit directory"),
                        (("--group", "Khối không có"), "has no unit in the directory"),
                        (("--unit", FINANCE, "--group", STATE_GROUP), "not both")):
        result = site.cli("tokens", "add", "--admin", "x", *args, check=False)
        assert result.returncode == 2 and error in result.stderr, result.stderr
    finance = next(a for a in accounts if a.name == "finance")
    assert site.get("/api/v1/identity", finance.token)[1] == {
        "kind": "admin", "name": "it-taichinh", "unit": FINANCE, "group": None}


def test_every_api_answer_stays_within_the_account(site: Collector,
                                                   accounts: list[Account]) -> None:
    ids = host_ids(site)
    assert set(ids.values()) == {FINANCE, TRADE, DISTRICT}
    api = site.url + "/api/v1"
    for account in accounts:
        lists = ["/sensors", "/hosts?limit=1000", "/hosts?format=csv&limit=1000",
                 "/indicators/top", f"/hosts?search=10.&unit={urllib.request.quote(TRADE)}",
                 *(f"/report?week=2022-W37&format={fmt}" for fmt in REPORT_FORMATS)]
        for path in lists:
            status, body = fetch(api + path, account.token)
            assert status == 200, (account.name, path, body[:200])
            assert_no_leak(account, path, body)
        _, doc = site.get("/api/v1/hosts?limit=1000", account.token)
        assert {h["unit"] for h in doc["hosts"]} == set(ids.values()) & account.units
        assert doc["total"] == len(doc["hosts"])
        _, report = site.get("/api/v1/report?week=2022-W37", account.token)
        listed = {u["unit"] for u in report["form2"]}
        assert account.units <= listed and not listed & (set(MARKS) - account.units)
        absent = fetch(f"{api}/hosts/999999", account.token)
        assert absent[0] == 404 and json.loads(absent[1]) == {"error": "no such host"}, absent
        for host_id, unit in ids.items():
            answer = fetch(f"{api}/hosts/{host_id}", account.token)
            if unit in account.units:
                assert answer[0] == 200
                assert_no_leak(account, f"host {host_id}", answer[1])
            else:
                assert answer == absent, (account.name, host_id)
                assert fetch(f"{api}/hosts/{host_id}/handled", account.token,
                             data=b'{"note": "x"}') == (404, absent[1])
        for unit in MARKS:
            if unit not in account.units:
                status, doc = site.get(f"/api/v1/report?unit={urllib.request.quote(unit)}",
                                       account.token)
                assert status == 400
                assert doc["error"] == f"unit {unit!r} is not in the unit directory " \
                                       f"(see `units list`)"
    assert_untouched(site)


def test_every_page_stays_within_the_account(site: Collector, accounts: list[Account]) -> None:
    ids = host_ids(site)
    ui = site.url + "/ui"
    for account in accounts:
        pages = ["/", "/?week=2022-W37", "/hosts", "/hosts?status=handled", "/hosts.csv",
                 "/sensors", *(f"/download?week=2022-W37&format={fmt}"
                               for fmt in REPORT_FORMATS)]
        pages += [f"/units/{urllib.request.quote(unit)}" for unit in account.units]
        for path in pages:
            status, body = fetch(ui + path, cookie=account.token)
            assert status == 200, (account.name, path, body[:300])
            assert_no_leak(account, path, body)
        absent = fetch(f"{ui}/hosts/999999", cookie=account.token)
        assert absent[0] == 404
        for unit in set(MARKS) - account.units:
            assert fetch(f"{ui}/units/{urllib.request.quote(unit)}",
                         cookie=account.token)[0] == 404
        for host_id, unit in ids.items():
            answer = fetch(f"{ui}/hosts/{host_id}", cookie=account.token)
            if unit in account.units:
                assert answer[0] == 200
                assert_no_leak(account, f"page of host {host_id}", answer[1])
            else:
                assert answer == absent
                assert fetch(f"{ui}/hosts/{host_id}/handled", cookie=account.token,
                             data=b"note=x")[0] == 404
    assert_untouched(site)


def assert_untouched(site: Collector) -> None:
    """No refused mark changed a host: the seed's one mark is the only line of any
    audit log, and the other units' hosts are still infected."""
    for host_id in host_ids(site):
        _, host = site.get(f"/api/v1/hosts/{host_id}", site.admin_token)
        marked = host["ip"] == "10.0.0.13"
        assert [a["by"] for a in host["actions"]] == (["admin"] if marked else [])
        if host["unit"] in (TRADE, DISTRICT):
            assert host["status"] == "infected"


def test_staff_tokens_do_not_open_the_metrics(site: Collector, accounts: list[Account]) -> None:
    """/metrics is Prometheus's, on its own address: a staff token opens nothing on the
    API's address, and the metrics address is for a scraper (bind it to loopback, or
    give it basic auth), not for staff."""
    for account in accounts:
        assert http("GET", site.url + "/metrics", account.token)[0] == 404
        status, body = fetch(site.url + "/api/v1/metrics", account.token)
        assert (status, json.loads(body)) == (404, {"error": "Not Found"}), body

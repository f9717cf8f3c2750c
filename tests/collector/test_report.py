"""The campaign report's numbers on a seeded database with known answers (see
tests/collector/seed.py), on SQLite and PostgreSQL; the period rules; and every output
format produced and read back with the library a reader would use."""

from __future__ import annotations

import csv
import io
import json
import urllib.request
import zipfile
from collections.abc import Iterator
from datetime import UTC, date
from pathlib import Path
from urllib.parse import quote
from xml.etree import ElementTree
from zoneinfo import ZoneInfo

import jsonschema
import pytest
from docx import Document
from openpyxl import load_workbook

from sensor.collector.api_schema import openapi
from sensor.collector.cli import add_units
from sensor.collector.forms import LABELS, form_tables, render
from sensor.collector.report import Period, Report, ReportError, campaign_report, period_from
from sensor.collector.store import EVERYTHING, Store
from tests.collector.harness import Collector
from tests.collector.seed import (
    BAD_IP,
    DEPLOYED,
    EVIL,
    EXPECTED,
    FINANCE,
    MAC_A1,
    SILENT,
    STATE_GROUP,
    TRADE,
    UNITS,
    Sender,
    at,
    mark_a3_handled,
    seed,
)

GROUP_SIZES: dict[str, int] = {}
for _line in UNITS.read_text(encoding="utf-8").splitlines()[1:]:
    GROUP_SIZES[_line.split("\t")[0]] = GROUP_SIZES.get(_line.split("\t")[0], 0) + 1


def period_of(name: str) -> Period:
    if ".." in name:
        return Period.between(*name.split(".."))
    return Period.week(name)


@pytest.fixture
def store(backend: str) -> Store:
    seeded = Store(backend, UTC)
    seed(seeded)
    return seeded


@pytest.mark.parametrize("name", list(EXPECTED))
def test_numbers_per_period(store: Store, name: str) -> None:
    report = campaign_report(store, period_of(name))
    figures = {u.unit: u for u in report.units}
    for unit, expected in EXPECTED[name].items():
        got = figures[unit]
        assert (got.computers_covered, got.computers_found, got.computers_handled) == expected, unit
    assert {u.unit for u in report.units if u.deployed} == DEPLOYED[name]
    assert {s.id for s in report.silent_sensors} == SILENT[name]
    assert report.informed == sum(GROUP_SIZES.values()) == 73
    assert report.deployed == len(DEPLOYED[name])
    by_group = report.by_group()
    assert {g: c["informed"] for g, c in by_group.items()} == GROUP_SIZES
    assert by_group[STATE_GROUP]["deployed"] == len(DEPLOYED[name])
    # Units without sensors are in the form with zeros, not left out.
    assert len(report.units) == 73


def test_host_found_in_week_one_and_marked_handled_in_week_two(backend: str) -> None:
    store = Store(backend, UTC)
    seed(store, mark_handled=False)
    week37 = Period.week("2022-W37")
    before = {u.unit: u for u in campaign_report(store, week37).units}[FINANCE]
    assert (before.computers_found, before.computers_handled) == (3, 1)   # A4 by quiet period
    assert sorted(h.ip for h in before.hosts_still_infected) == ["10.0.0.13", "10.0.0.99"]
    mark_a3_handled(store)
    after = {u.unit: u for u in campaign_report(store, week37).units}[FINANCE]
    assert (after.computers_found, after.computers_handled) == (3, 2)
    assert [h.ip for h in after.hosts_still_infected] == ["10.0.0.99"]


def test_annex_top_indicators_and_hosts_still_infected(store: Store) -> None:
    report = campaign_report(store, Period.week("2022-W37"), unit=FINANCE)
    [finance] = report.units
    assert [(i.indicator, i.indicator_type, i.hits, i.hosts) for i in finance.top_indicators] \
        == [(EVIL, "domain", 7, 2), (BAD_IP, "ip", 3, 1)]
    # A1 changed its IP but not its MAC: one host, shown at its latest address, with the
    # week's hits only.
    [a1] = finance.hosts_still_infected
    assert (a1.ip, a1.mac, a1.sensor, a1.hits) == ("10.0.0.99", MAC_A1, "tc-gw1", 5)
    trade = campaign_report(store, Period.week("2022-W37"), unit=TRADE).units[0]
    assert [(h.ip, h.hits) for h in trade.hosts_still_infected] == [("10.1.0.21", 4)]


def test_times_keep_their_offset_in_json_and_read_as_people_write_them(tmp_path: Path) -> None:
    """JSON keeps ISO 8601 with the collector's offset; the forms show dd/mm/yyyy HH:MM."""
    store = Store(f"sqlite:///{tmp_path / 'c.db'}", ZoneInfo("Asia/Ho_Chi_Minh"))
    seed(store)
    report = campaign_report(store, Period.week("2022-W37"), unit=TRADE)
    [host] = report.units[0].hosts_still_infected
    assert host.last_hit == "2022-09-15T17:00:30+07:00"        # at(15): 10:00:30 UTC
    assert "| 10.1.0.21 | 02:00:00:00:0b:01 | ct-gw1 | 15/09/2022 17:00 | 4 |" in \
        render(report, "md").decode()


def test_the_still_infected_list_is_bounded_and_the_counts_are_not(store: Store) -> None:
    days = (Period.week("2022-W37").first.isoformat(), Period.week("2022-W37").last.isoformat())
    whole = store.report_rows(*days, EVERYTHING)
    bounded = store.report_rows(*days, EVERYTHING, infected_limit=1)
    assert len(whole.infected) > 1
    assert bounded.infected == whole.infected[:1]
    assert bounded.found == whole.found and sum(n for _, n, _ in whole.found) > 1


def test_unit_and_group_scope(store: Store) -> None:
    unit = campaign_report(store, Period.week("2022-W38"), unit=TRADE)
    assert (unit.informed, unit.deployed, [u.unit for u in unit.units]) == (1, 0, [TRADE])
    assert [s.id for s in unit.silent_sensors] == ["ct-gw1"]
    group = campaign_report(store, Period.week("2022-W37"), group=STATE_GROUP)
    assert (group.informed, group.deployed) == (GROUP_SIZES[STATE_GROUP], 2)
    assert {u.group for u in group.units} == {STATE_GROUP}
    with pytest.raises(ReportError, match="not in the unit directory"):
        campaign_report(store, Period.week("2022-W37"), unit="Sở Không Có")
    with pytest.raises(ReportError, match="not in the unit directory"):
        campaign_report(store, Period.week("2022-W37"), group="Khối không có")


def test_periods() -> None:
    assert Period.week("2022-W38") == Period(date(2022, 9, 19), date(2022, 9, 25))
    assert Period.week("2020-W53").last == date(2021, 1, 3)
    # Default: the last full ISO week before today, whatever the weekday.
    for today in (date(2022, 9, 26), date(2022, 9, 28), date(2022, 10, 2)):
        assert Period.last_full_week(today) == Period.week("2022-W38")
    assert period_from(None, "2022-08-26", "2022-09-28", date(2023, 1, 1)).name \
        == "2022-08-26_2022-09-28"
    assert Period.week("2022-W38").name == "2022-W38"
    for bad in (("2022-W54", None, None), ("22-38", None, None), (None, "2022-09-30", None),
                ("2022-W38", "2022-09-01", "2022-09-02"), (None, "2022-09-30", "2022-09-01"),
                (None, "2022-13-01", "2022-13-02")):
        with pytest.raises(ReportError):
            period_from(*bad, date(2022, 10, 1))


# -- formats ------------------------------------------------------------------------------
@pytest.fixture
def report(tmp_path: Path) -> Report:
    store = Store(f"sqlite:///{tmp_path / 'seed.db'}", UTC)
    seed(store)
    return campaign_report(store, Period.week("2022-W37"))


def test_json_contract(report: Report) -> None:
    doc = json.loads(render(report, "json"))
    assert doc["period"] == {"from": "2022-09-12", "to": "2022-09-18", "week": "2022-W37"}
    assert set(doc["form1"]) == {"informed", "deployed", "by_group"}
    assert (doc["form1"]["informed"], doc["form1"]["deployed"]) == (73, 2)
    assert doc["form1"]["by_group"][STATE_GROUP] == {"informed": 20, "deployed": 2}
    finance = next(u for u in doc["form2"] if u["unit"] == FINANCE)
    assert {"unit", "group", "computers_covered", "computers_found", "computers_handled",
            "top_indicators", "hosts_still_infected"} <= set(finance)
    assert (finance["computers_covered"], finance["computers_found"],
            finance["computers_handled"]) == (4, 3, 2)
    assert finance["top_indicators"][0] == {"indicator": EVIL, "indicator_type": "domain",
                                            "hits": 7, "hosts": 2, "matches": ["dns.query"]}
    assert doc["totals"] == {"computers_covered": 5, "computers_found": 4,
                             "computers_handled": 2, "computers_encrypted_dns": 0}
    assert doc["assessment"].startswith("Từ ngày 12/09/2022 đến ngày 18/09/2022, 2/73 cơ quan")


def test_assessment_drafts_the_numbers_in_both_languages(report: Report) -> None:
    vi = json.loads(render(report, "json"))["assessment"]
    assert "giám sát 5 máy tính, phát hiện 4 máy tính" in vi
    assert "đã xử lý 2 máy tính, còn 2 máy tính đang được xử lý" in vi
    assert "Có 1 thiết bị giám sát không gửi dữ liệu trong kỳ" in vi
    en = json.loads(render(report, "json", lang="en"))["assessment"]
    assert "2 of 73 units" in en and "monitored 5 computers and found 4" in en
    assert "1 sensor(s) sent nothing" in en


def test_markdown_has_the_form_labels_and_numbers(report: Report) -> None:
    text = render(report, "md", organisation="Sở Thông tin và Truyền thông").decode()
    vi = LABELS["vi"]
    assert text.startswith(f"# {vi['title']}\n")
    assert f"- **{vi['unit_name']}:** Sở Thông tin và Truyền thông" in text
    assert f"| 1 | {vi['informed']} | 73 |  |" in text
    assert f"| 2 | {vi['deployed']} | 2 |  |" in text
    assert "| Sở Tài chính | có | 2/2 | 4 | 3 | 2 |" in text
    assert f"| {vi['total']} | 2/73 | 3/4 | 5 | 4 | 2 |" in text
    english = render(report, "md", lang="en").decode()
    assert english.startswith(f"# {LABELS['en']['title']}") and "Computers covered" in english


def test_csv_reads_back_one_row_per_unit_and_a_total(report: Report) -> None:
    data = render(report, "csv")
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0][5:] == [LABELS["vi"]["covered"], LABELS["vi"]["found"],
                           LABELS["vi"]["handled"], LABELS["vi"]["parent"]]
    assert len(rows) == 1 + 73 + 1
    finance = next(r for r in rows if r[2] == FINANCE)
    assert finance[3:] == ["có", "2/2", "4", "3", "2", ""]
    assert rows[-1][2:] == [LABELS["vi"]["total"], "2/73", "3/4", "5", "4", "2", ""]


def test_docx_is_laid_out_like_the_form(report: Report, tmp_path: Path) -> None:
    path = tmp_path / "report.docx"
    path.write_bytes(render(report, "docx", organisation="Sở TT&TT Hải Phòng"))
    document = Document(str(path))
    vi = LABELS["vi"]
    paragraphs = [p.text for p in document.paragraphs]
    assert paragraphs[0] == vi["title"]
    assert vi["general"] in paragraphs and vi["figures"] in paragraphs
    assert f"{vi['unit_name']}: Sở TT&TT Hải Phòng" in paragraphs
    form1 = document.tables[0]
    assert [c.text for c in form1.rows[0].cells] == ["STT", "Nội dung", "Số lượng", "Ghi chú"]
    assert [c.text for c in form1.rows[1].cells] == ["1", vi["informed"], "73", ""]
    assert [c.text for c in form1.rows[2].cells] == ["2", vi["deployed"], "2", ""]
    form2 = document.tables[2]
    rows = [[c.text for c in r.cells] for r in form2.rows]
    block = next(i for i, row in enumerate(rows) if row[1] == STATE_GROUP)  # its heading row
    assert rows[block][0] in ("I", "II", "III", "IV") and rows[block][2:] == [
        "2/20", "3/4", "5", "4", "2"]                                    # the block's subtotal
    assert form2.rows[block].cells[1].paragraphs[0].runs[0].bold
    finance = next(i for i, row in enumerate(rows) if row[1] == FINANCE)
    assert rows[finance][2:] == ["có", "2/2", "4", "3", "2"] and rows[finance][0].isdigit()
    assert block < finance and STATE_GROUP not in rows[finance]      # not repeated per unit
    assert rows[-1] == ["", LABELS["vi"]["total"], "2/73", "3/4", "5", "4", "2"]


def test_daily_series_follow_each_computers_timeline(tmp_path: Path) -> None:
    """Three weeks of the seed, day by day: A1, A4, A3 and B1 found on 12–15/09; A1 and
    A4 handled by the quiet period on 19/09 and 20/09, A3 marked on 21/09; A1 hit again
    on 24/09. Two still infected at the end: A1 and B1."""
    store = Store(f"sqlite:///{tmp_path / 'seed.db'}", UTC)
    seed(store)
    daily = campaign_report(store, Period.between("2022-09-10", "2022-10-01")).daily
    day = {d.strftime("%d/%m"): n for n, d in enumerate(daily.days)}
    assert sum(daily.hits) == 15 and daily.hits[day["12/09"]] == 5
    assert [d for d, n in day.items() if daily.found[n]] == ["12/09", "13/09", "14/09",
                                                             "15/09", "24/09"]
    assert [d for d, n in day.items() if daily.handled[n]] == ["19/09", "20/09", "21/09"]
    assert daily.still_infected[day["15/09"]] == 4 and daily.still_infected[-1] == 2
    assert daily.units_deployed[day["12/09"]] == 1 and daily.units_deployed[-1] == 2
    finance = campaign_report(store, Period.between("2022-09-10", "2022-10-01"),
                              unit=FINANCE).daily
    assert finance.still_infected[-1] == 1 and finance.units_deployed[-1] == 1


def test_the_charts_are_svg_on_the_page_and_pictures_in_docx(report: Report,
                                                            tmp_path: Path) -> None:
    tables = form_tables(report)
    assert len(tables.charts) == 3
    for chart in tables.charts:
        assert chart.startswith("<svg") and "<script" not in chart and "href" not in chart
        ElementTree.fromstring(chart)           # well-formed XML
    assert LABELS["vi"]["chart_hits"] in tables.charts[0]
    path = tmp_path / "report.docx"
    path.write_bytes(render(report, "docx"))
    with zipfile.ZipFile(path) as archive:
        pictures = [n for n in archive.namelist() if n.startswith("word/media/")]
        assert len(pictures) == 3
        assert all(archive.read(n).startswith(b"\x89PNG") for n in pictures)
    assert LABELS["vi"]["charts"] in [p.text for p in Document(str(path)).paragraphs]


def test_xlsx_has_a_summary_and_one_sheet_per_block(report: Report, tmp_path: Path) -> None:
    path = tmp_path / "report.xlsx"
    path.write_bytes(render(report, "xlsx"))
    book = load_workbook(path)
    assert book.sheetnames[0] == LABELS["vi"]["summary_sheet"]
    assert len(book.sheetnames) == 1 + len(GROUP_SIZES)
    blocks = {book[name]["A1"].value: book[name] for name in book.sheetnames[1:]}
    assert set(blocks) == set(GROUP_SIZES)
    sheet = blocks[STATE_GROUP]
    rows = list(sheet.iter_rows(min_row=3, values_only=True))
    assert len(rows) == GROUP_SIZES[STATE_GROUP]
    finance = next(r for r in rows if r[2] == FINANCE)
    assert finance[5:] == (4, 3, 2, None)           # the last column: the parent unit
    summary = [r for r in book.worksheets[0].iter_rows(values_only=True)]
    assert (1, LABELS["vi"]["informed"], 73, None) in [r[:4] for r in summary]


def test_spreadsheets_never_run_a_name_as_a_formula(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'c.db'}", UTC)
    store.migrate()
    store.add_unit("=HYPERLINK(\"http://x\")", "=1+1")
    report = campaign_report(store, Period.week("2022-W37"))
    rows = list(csv.reader(io.StringIO(render(report, "csv").decode("utf-8-sig"))))
    assert rows[1][1:3] == ["'=1+1", "'=HYPERLINK(\"http://x\")"]
    path = tmp_path / "r.xlsx"
    path.write_bytes(render(report, "xlsx"))
    sheet = load_workbook(path).worksheets[1]
    assert sheet["C3"].data_type == "s" and sheet["C3"].value.startswith("'=")


def test_markdown_escapes_what_it_would_act_on(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'c.db'}", UTC)
    store.migrate()
    store.add_unit("Ban | *A*\n<b>", "Khối")
    markdown = render(campaign_report(store, Period.week("2022-W37")), "md").decode()
    assert "| I | Khối | 0/1 | 0/0 | 0 | 0 | 0 |\n" \
        "| 1 | Ban \\| \\*A\\* \\<b\\> | không | 0/0 | 0 | 0 | 0 |" in markdown


# -- command line and API --------------------------------------------------------------------
@pytest.fixture
def seeded_collector(tmp_path: Path) -> Iterator[Collector]:
    collector = Collector(tmp_path / "collector")
    seed(Store(collector.database, UTC))
    yield collector.start()
    collector.stop()


def test_command_writes_every_format_named_by_period(seeded_collector: Collector,
                                                     tmp_path: Path) -> None:
    out = tmp_path / "reports"
    done = seeded_collector.cli("report", "--week", "2022-W37", "--format", "all",
                                "--out-dir", str(out))
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"madoc-report-2022-W37.{ext}" for ext in
                     ("csv", "docx", "json", "md", "xlsx")]
    assert done.stdout.split() == [str(out / f"madoc-report-2022-W37.{ext}")
                                   for ext in ("md", "csv", "json", "docx", "xlsx")]
    doc = json.loads((out / "madoc-report-2022-W37.json").read_text())
    assert (doc["form1"]["informed"], doc["form1"]["deployed"]) == (73, 2)
    unit = seeded_collector.cli("report", "--from", "2022-09-12", "--to", "2022-10-02",
                                "--unit", FINANCE, "-f", "json")
    [finance] = json.loads(unit.stdout)["form2"]
    assert (finance["computers_covered"], finance["computers_found"],
            finance["computers_handled"]) == EXPECTED["2022-09-12..2022-10-02"][FINANCE]


@pytest.mark.parametrize("args, message", [
    (("--week", "2022-38"), "expected YYYY-Www"),
    (("--from", "2022-09-30"), "--from and --to go together"),
    (("--week", "2022-W38", "--unit", "Sở Không Có"), "not in the unit directory"),
    (("--format", "pdf"), "choose from md, csv, json, docx, xlsx or all"),
    (("--format", "md,csv"), "several formats need --out-dir"),
])
def test_command_errors_are_one_clear_line(seeded_collector: Collector, args: tuple,
                                           message: str) -> None:
    done = seeded_collector.cli("report", *args, check=False)
    assert done.returncode == 2 and message in done.stderr and done.stdout == ""


def test_api_serves_the_same_report(seeded_collector: Collector) -> None:
    admin = seeded_collector.admin_token
    status, doc = seeded_collector.get("/api/v1/report?week=2022-W37", admin)
    assert status == 200
    cli = json.loads(seeded_collector.cli("report", "--week", "2022-W37", "-f", "json").stdout)
    assert doc == cli
    document = openapi()
    jsonschema.validate(doc, {**document["components"]["schemas"]["Report"],
                              "components": document["components"]},
                        format_checker=jsonschema.FormatChecker())
    query = "/api/v1/report?week=2022-W37&format=docx&group=" + quote(STATE_GROUP)
    request = urllib.request.Request(seeded_collector.url + query,
                                     headers={"Authorization": f"Bearer {admin}"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.headers["Content-Type"].startswith("application/vnd.openxmlformats")
        assert "madoc-report-2022-W37-" in answer.headers["Content-Disposition"]
        document = Document(io.BytesIO(answer.read()))
    assert [c.text for c in document.tables[0].rows[1].cells][2] == "20"
    sensor = seeded_collector.sensor_token("probe")
    assert seeded_collector.get("/api/v1/report", sensor)[0] == 403
    assert seeded_collector.get("/api/v1/report?week=W38", admin)[0] == 400
    assert seeded_collector.get("/api/v1/report?format=pdf", admin)[0] == 400


def test_units_not_informed_are_not_counted_as_informed(tmp_path: Path) -> None:
    directory = tmp_path / "units.tsv"
    directory.write_text("group\tunit\tinformed\nA\tU1\t1\nA\tU2\tkhông\nB\tU3\t\n",
                         encoding="utf-8")
    store = Store(f"sqlite:///{tmp_path / 'c.db'}", UTC)
    store.migrate()
    add_units(store, directory, 0.0)
    report = campaign_report(store, Period.week("2022-W37"))
    assert report.by_group() == {"A": {"informed": 1, "deployed": 0},
                                 "B": {"informed": 1, "deployed": 0}}
    directory.write_text("group\tunit\tinformed\nA\tU2\tyes\nA\tU1\t\n", encoding="utf-8")
    add_units(store, directory, 0.0)     # an empty mark leaves U1 as it was
    assert campaign_report(store, Period.week("2022-W37")).informed == 3


HEALTH, VIET_TIEP, KIEN_AN = "Sở Y tế", "Bệnh viện Việt Tiệp", "Bệnh viện Kiến An"


def test_sub_units_roll_up_into_their_parent(store: Store) -> None:
    """A department and its two hospitals (the directory's `parent`): the department's
    row on Form 2 carries the hospitals' figures with its own, the hospitals follow it
    numbered under it, and the totals count every computer once."""
    before = campaign_report(store, Period.week("2022-W37"))
    store.add_unit(HEALTH, STATE_GROUP, now=at(1))
    for hospital in (VIET_TIEP, KIEN_AN):
        store.add_unit(hospital, STATE_GROUP, parent=HEALTH, now=at(1))
    for sensor, unit in (("yt-gw1", HEALTH), ("vt-gw1", VIET_TIEP), ("ka-gw1", KIEN_AN)):
        store.add_sensor_token(sensor, unit, at(1))
    Sender(store, "yt-gw1").send([("10.9.0.2", None, at(12))], [])
    Sender(store, "vt-gw1").send([("10.9.1.2", None, at(12))],
                                 [("10.9.1.3", None, at(13), EVIL, "domain", 2)])
    Sender(store, "ka-gw1").send([("10.9.2.2", None, at(14))], [])
    report = campaign_report(store, Period.week("2022-W37"))
    units = {u.unit: u for u in report.units}
    assert (units[HEALTH].computers_covered, units[HEALTH].computers_found) == (1, 0)
    rolled = units[HEALTH].with_subunits
    assert rolled is not None and (rolled.sensors_reporting, rolled.sensors) == (3, 3)
    assert (rolled.computers_covered, rolled.computers_found) == (4, 1)
    assert units[VIET_TIEP].parent == HEALTH and units[VIET_TIEP].with_subunits is None
    names = [u.unit for u in report.units]
    assert names[names.index(HEALTH) + 1:names.index(HEALTH) + 3] == [KIEN_AN, VIET_TIEP]
    for name in ("computers_covered", "computers_found"):
        assert report.total(name) == before.total(name) + {"computers_covered": 4,
                                                           "computers_found": 1}[name]
    tables = form_tables(report)
    row = next(r for r in tables.form2.rows if r[1] == HEALTH)
    assert row[3:] == ["3/3", 4, 1, 0]
    below = tables.form2.rows[tables.form2.rows.index(row) + 1:][:2]
    assert [(r[0], r[1], r[4]) for r in below] == [(f"{row[0]}.1", KIEN_AN, 1),
                                                   (f"{row[0]}.2", VIET_TIEP, 2)]
    block = next(r for r in tables.form2.rows if r[1] == STATE_GROUP)
    seeded = sum(covered for covered, _, _ in EXPECTED["2022-W37"].values())  # all state
    assert block[4] == seeded + 4                   # the department's and its hospitals'
    flat = next(r for r in tables.form2_units.rows if r[2] == VIET_TIEP)
    assert flat[5:] == [2, 1, 0, HEALTH]            # its own figures, and its parent
    entry = next(u for u in report.to_json()["form2"] if u["unit"] == HEALTH)
    assert entry["with_subunits"]["computers_covered"] == 4


def test_a_loop_of_parents_is_cut_not_followed(store: Store) -> None:
    store.add_unit(FINANCE, parent=TRADE)
    store.add_unit(TRADE, parent=FINANCE)
    report = campaign_report(store, Period.week("2022-W37"))
    assert len(report.units) == 73 and len({u.unit for u in report.units}) == 73
    rolled = [u for u in report.units if u.with_subunits is not None]
    assert len(rolled) == 1 and rolled[0].with_subunits.computers_found == 4

"""The report laid out as the campaign's forms: Markdown, CSV, JSON, DOCX, XLSX.

Every format is drawn from the same tables (`FormTables`), so the figures cannot
differ between a download and what the page shows. Labels are the forms' own
Vietnamese words (CONTEXT.md), or English with `lang="en"`.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from sensor.collector.charts import campaign_charts, orgs_charts, png
from sensor.collector.report import Report, UnitFigures, assessment, readable_time

FORMATS = ("md", "csv", "json", "docx", "xlsx")
LANGS = ("vi", "en")
MEDIA_TYPES = {
    "md": "text/markdown; charset=utf-8",
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}

LABELS: dict[str, dict[str, str]] = {
    "vi": {
        "title": "Mẫu thống kê, báo cáo kết quả triển khai",
        "period": "Kỳ báo cáo: từ ngày {first} đến ngày {last}",
        "general": "1. Thông tin chung",
        "unit_name": "Tên đơn vị",
        "assessment": "Đánh giá kết quả thực hiện chiến dịch trong phạm vi triển khai",
        "proposals": "Đề xuất, kiến nghị (nếu có)",
        "figures": "2. Thông tin số liệu",
        "no": "STT", "content": "Nội dung", "quantity": "Số lượng", "note": "Ghi chú",
        "informed": "Tổng số cơ quan, tổ chức, doanh nghiệp nhận được thông tin về chiến dịch",
        "deployed": "Tổng số cơ quan, tổ chức triển khai chiến dịch",
        "by_group": "Theo khối",
        "group": "Khối", "unit": "Đơn vị", "parent": "Thuộc đơn vị",
        "informed_short": "Nhận được thông tin", "deployed_short": "Triển khai",
        "sensors": "Thiết bị giám sát (gửi dữ liệu/tổng số)",
        "form2_title": "Báo cáo kết quả triển khai làm sạch mã độc",
        "covered": "Số lượng máy tính đã thực hiện",
        "found": "Kết quả đã phát hiện mã độc",
        "handled": "Kết quả đã xử lý mã độc (nếu có)",
        "total": "Tổng cộng",
        "annex": "Phụ lục",
        "top_indicators": "Địa chỉ độc hại được kết nối nhiều nhất",
        "indicator": "Địa chỉ độc hại", "kind": "Loại", "hits": "Số lượt", "hosts": "Số máy",
        "matches": "Phát hiện qua",
        "encrypted_dns": "Máy tính dùng DNS mã hoá (thiết bị giám sát không thấy các truy vấn "
                         "DNS của các máy này)",
        "resolvers": "Máy chủ DNS", "flows": "Số kết nối",
        "still_infected": "Máy tính chưa xử lý",
        "handled_log": "Máy tính được đánh dấu đã xử lý trong kỳ",
        "orgs": "Các tổ chức báo cáo lên", "org": "Tổ chức",
        "org_indicators": "Địa chỉ độc hại được kết nối ở nhiều tổ chức nhất",
        "computers": "Số máy", "org_count": "Số tổ chức",
        "chart_orgs": "Số lượt kết nối và số máy tính kết nối đến địa chỉ độc hại theo ngày, "
                      "các tổ chức", "chart_computers_hit": "Máy tính kết nối",
        "org_silent": "Không gửi dữ liệu trong kỳ",
        "charts": "Biểu đồ", "chart_hits": "Số lượt kết nối đến địa chỉ độc hại theo ngày",
        "chart_computers": "Máy tính phát hiện và đã xử lý theo ngày, còn chưa xử lý",
        "chart_found": "Phát hiện", "chart_handled": "Đã xử lý", "chart_still": "Chưa xử lý",
        "chart_units": "Số cơ quan, tổ chức đã triển khai",
        "handled_at": "Thời điểm", "handled_by": "Người xử lý", "action_note": "Nội dung xử lý",
        "ip": "Địa chỉ IP", "mac": "Địa chỉ MAC", "sensor": "Thiết bị giám sát",
        "last_hit": "Lần kết nối cuối",
        "silent": "Thiết bị giám sát không gửi dữ liệu trong kỳ",
        "last_seen": "Lần gửi cuối",
        "summary_sheet": "Tổng hợp",
        "yes": "có", "no_": "không",
    },
    "en": {
        "title": "Campaign deployment statistics and results report",
        "period": "Period: from {first} to {last}",
        "general": "1. General information",
        "unit_name": "Unit name",
        "assessment": "Assessment of the campaign's results within the unit's scope",
        "proposals": "Proposals (if any)",
        "figures": "2. Figures",
        "no": "No.", "content": "Item", "quantity": "Quantity", "note": "Note",
        "informed": "Units that received the campaign information",
        "deployed": "Units that deployed the campaign",
        "by_group": "By block",
        "group": "Block", "unit": "Unit", "parent": "Part of",
        "informed_short": "Informed", "deployed_short": "Deployed",
        "sensors": "Sensors (reporting/total)",
        "form2_title": "Malware clean-up results",
        "covered": "Computers covered",
        "found": "Computers found infected",
        "handled": "Computers handled",
        "total": "Total",
        "annex": "Annex",
        "top_indicators": "Most contacted malicious addresses",
        "indicator": "Indicator", "kind": "Type", "hits": "Hits", "hosts": "Hosts",
        "matches": "Seen as",
        "encrypted_dns": "Computers using encrypted DNS (the sensor cannot see these "
                         "computers' DNS lookups)",
        "resolvers": "Resolvers", "flows": "Connections",
        "still_infected": "Computers still infected",
        "handled_log": "Computers marked handled in the period",
        "orgs": "Organisations reporting here", "org": "Organisation",
        "org_indicators": "Malicious addresses hit in the most organisations",
        "computers": "Computers", "org_count": "Organisations",
        "chart_orgs": "Hits and computers hit per day, all organisations",
        "chart_computers_hit": "Computers hit",
        "org_silent": "Sent nothing in the period",
        "charts": "Charts", "chart_hits": "Hits on malicious addresses per day",
        "chart_computers": "Computers found and handled per day, still infected",
        "chart_found": "Found", "chart_handled": "Handled", "chart_still": "Still infected",
        "chart_units": "Units deployed",
        "handled_at": "When", "handled_by": "By", "action_note": "What was done",
        "ip": "IP address", "mac": "MAC address", "sensor": "Sensor",
        "last_hit": "Last hit",
        "silent": "Sensors that sent nothing in the period",
        "last_seen": "Last report",
        "summary_sheet": "Summary",
        "yes": "yes", "no_": "no",
    },
}


@dataclass
class Table:
    title: str
    header: list[str]
    rows: list[list[Any]]
    emphasis: list[int] = field(default_factory=list)     # rows printed bold: headings, totals


@dataclass
class FormTables:
    """The report as titled tables, in the order the forms print them."""
    labels: dict[str, str]
    period: str
    organisation: str
    assessment: str
    form1: Table
    by_group: Table
    form2: Table            # as the official form: a heading row with its subtotal per block
    form2_units: Table      # one row per unit naming its block, and the total (CSV, sheets)
    annex: list[Table]      # per unit: top indicators, hosts still infected; silent sensors
    charts: list[str]       # SVG: hits, computers found/handled, units deployed, per day

    def unit_rows_by_group(self) -> dict[str, list[list[Any]]]:
        groups: dict[str, list[list[Any]]] = {}
        for row in self.form2_units.rows[:-1]:      # the last row is the total
            groups.setdefault(row[1], []).append(row)
        return groups


def roman(number: int) -> str:
    """A block's number on the forms: I, II, III, IV …"""
    text = ""
    for value, letters in ((1000, "M"), (900, "CM"), (500, "D"), (400, "CD"), (100, "C"),
                           (90, "XC"), (50, "L"), (40, "XL"), (10, "X"), (9, "IX"), (5, "V"),
                           (4, "IV"), (1, "I")):
        while number >= value:
            text, number = text + letters, number - value
    return text


def _figures(units: list[UnitFigures]) -> list[Any]:
    """Form 2's figures summed over units: deployed/informed, sensors, the three counts."""
    return [f"{sum(u.deployed for u in units)}/{sum(u.informed for u in units)}",
            f"{sum(u.sensors_reporting for u in units)}/{sum(u.sensors for u in units)}",
            sum(u.computers_covered for u in units), sum(u.computers_found for u in units),
            sum(u.computers_handled for u in units)]


def _unit_figures(unit: UnitFigures, text: dict[str, str], with_subunits: bool = False
                  ) -> list[Any]:
    """A unit's Form 2 cells: its own figures, or with those of its sub-units."""
    counts = (unit.with_subunits or unit) if with_subunits else unit
    return [text["yes"] if unit.deployed else text["no_"],
            f"{counts.sensors_reporting}/{counts.sensors}", counts.computers_covered,
            counts.computers_found, counts.computers_handled]


def _form2(report: Report, text: dict[str, str]) -> tuple[Table, Table]:
    """Form 2 laid out as the official form (units under their block's heading row,
    which carries the block's subtotal, then the total), and as one row per unit.

    On the official form a unit with sub-units shows their figures summed with its own,
    and its sub-units follow it numbered under it (3.1, 3.2…), in its block; the table of
    one row per unit gives each unit's own figures and names its parent."""
    numbers = [text["covered"], text["found"], text["handled"]]
    grouped = Table(text["form2_title"], [text["no"], text["unit"], text["deployed_short"],
                                          text["sensors"], *numbers], [])
    blocks: dict[str, list[UnitFigures]] = {}
    numbered: dict[str, str] = {}
    block = ""
    for unit in report.units:                   # sub-units follow their parent
        if unit.parent in numbered:
            siblings = sum(1 for other in blocks[block] if other.parent == unit.parent)
            numbered[unit.unit] = f"{numbered[unit.parent]}.{siblings + 1}"
        else:
            block = unit.group
            tops = sum(1 for other in blocks.get(block, []) if other.parent not in numbered)
            numbered[unit.unit] = str(tops + 1)
        blocks.setdefault(block, []).append(unit)
    for number, (group, units) in enumerate(blocks.items(), start=1):
        grouped.emphasis.append(len(grouped.rows))
        grouped.rows.append([roman(number), group or "-", *_figures(units)])
        grouped.rows += [[numbered[unit.unit], unit.unit, *_unit_figures(unit, text, True)]
                         for unit in units]
    total = [text["total"], *_figures(report.units)]
    grouped.emphasis.append(len(grouped.rows))
    grouped.rows.append(["", *total])
    flat = Table(text["form2_title"], [text["no"], text["group"], text["unit"],
                                       text["deployed_short"], text["sensors"], *numbers,
                                       text["parent"]],
                 [[number, unit.group or "-", unit.unit, *_unit_figures(unit, text),
                   unit.parent or ""]
                  for number, unit in enumerate(report.units, start=1)])
    flat.rows.append(["", "", *total, ""])
    return grouped, flat


def form_tables(report: Report, lang: str = "vi", organisation: str = "") -> FormTables:
    text = LABELS[lang]
    period = text["period"].format(first=report.period.first.strftime("%d/%m/%Y"),
                                   last=report.period.last.strftime("%d/%m/%Y"))
    if report.period.iso_week:
        period += f" ({report.period.iso_week})"
    form1 = Table(text["figures"], [text["no"], text["content"], text["quantity"], text["note"]],
                  [[1, text["informed"], report.informed, ""],
                   [2, text["deployed"], report.deployed, ""]])
    by_group = Table(text["by_group"], [text["group"], text["informed_short"],
                                        text["deployed_short"]],
                     [[group or "-", counts["informed"], counts["deployed"]]
                      for group, counts in report.by_group().items()])
    form2, form2_units = _form2(report, text)
    annex = [_orgs_table(report, text), Table(
        text["org_indicators"], [text["indicator"], text["kind"], text["org_count"],
                                 text["computers"], text["hits"]],
        [[i.indicator, i.indicator_type, i.orgs, i.computers, i.hits]
         for i in report.org_indicators])] if report.orgs else []
    for unit in report.units:
        if unit.top_indicators:
            annex.append(Table(f"{unit.unit}: {text['top_indicators']}",
                               [text["indicator"], text["kind"], text["matches"], text["hits"],
                                text["hosts"]],
                               [[i.indicator, i.indicator_type, ", ".join(i.matches), i.hits,
                                 i.hosts] for i in unit.top_indicators]))
        if unit.hosts_still_infected:
            annex.append(Table(f"{unit.unit}: {text['still_infected']}",
                               [text["ip"], text["mac"], text["sensor"], text["last_hit"],
                                text["hits"]],
                               [[h.ip, h.mac or "", h.sensor, readable_time(h.last_hit),
                                 h.hits] for h in unit.hosts_still_infected]))
        if unit.handled_log:
            annex.append(Table(f"{unit.unit}: {text['handled_log']}",
                               [text["ip"], text["mac"], text["handled_at"],
                                text["handled_by"], text["action_note"]],
                               [[h.ip, h.mac or "", readable_time(h.at), h.by, h.note]
                                for h in unit.handled_log]))
        if unit.hosts_encrypted_dns:
            annex.append(Table(f"{unit.unit}: {text['encrypted_dns']}",
                               [text["ip"], text["mac"], text["sensor"], text["kind"],
                                text["resolvers"], text["flows"]],
                               [[h.ip, h.mac or "", h.sensor, ", ".join(h.kinds).upper(),
                                 ", ".join(h.servers[:5]), h.flows]
                                for h in unit.hosts_encrypted_dns]))
    if report.silent_sensors:
        annex.append(Table(text["silent"], [text["sensor"], text["unit"], text["last_seen"]],
                           [[s.id, s.unit, readable_time(s.last_seen) or "-"]
                            for s in report.silent_sensors]))
    return FormTables(text, period, organisation, assessment(report, lang), form1, by_group,
                      form2, form2_units, annex,
                      (campaign_charts(report.daily, text) if report.daily else [])
                      + (orgs_charts(report.orgs_daily, text) if report.orgs_daily else []))


def _orgs_table(report: Report, text: dict[str, str]) -> Table:
    """Form 1 and Form 2's figures per organisation below, and their total."""
    names = ("informed", "deployed", "computers_covered", "computers_found",
             "computers_handled")
    rows = [[o.org, *(getattr(o, n) for n in names), text["yes"] if o.silent else ""]
            for o in report.orgs]
    rows.append([text["total"], *(sum(getattr(o, n) for o in report.orgs) for n in names),
                 sum(o.silent for o in report.orgs)])
    return Table(text["orgs"], [text["org"], text["informed_short"], text["deployed_short"],
                                text["covered"], text["found"], text["handled"],
                                text["org_silent"]], rows, emphasis=[len(rows) - 1])


def report_file_name(report: Report, fmt: str) -> str:
    scope = report.org or report.unit or report.group
    suffix = "-" + re.sub(r"[^\w.-]+", "_", scope).strip("_") if scope else ""
    return f"madoc-report-{report.period.name}{suffix}.{fmt}"


def render(report: Report, fmt: str, lang: str = "vi", organisation: str = "") -> bytes:
    if fmt == "json":
        return orjson.dumps(report.to_json(lang), option=orjson.OPT_INDENT_2)
    tables = form_tables(report, lang, organisation)
    return {"md": _markdown, "csv": _csv, "docx": _docx, "xlsx": _xlsx}[fmt](tables)


# -- Markdown ------------------------------------------------------------------------------
_MD_SPECIAL = re.compile(r"([\\|*_`<>\[\]#])")


def _md_cell(value: Any) -> str:
    """Names come from directories and blocklists: escape what Markdown would act on."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(str(value).split()))


def _md_table(table: Table, level: str = "###") -> list[str]:
    lines = [f"{level} {_md_cell(table.title)}", "",
             "| " + " | ".join(_md_cell(h) for h in table.header) + " |",
             "|" + "---|" * len(table.header)]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in table.rows]
    return lines + [""]


def _markdown(t: FormTables) -> bytes:
    text = t.labels
    lines = [f"# {text['title']}", "", t.period, "", f"## {text['general']}", "",
             f"- **{text['unit_name']}:** {_md_cell(t.organisation) or '…'}",
             f"- **{text['assessment']}:** {t.assessment}",
             f"- **{text['proposals']}:** …", ""]
    lines += _md_table(t.form1, "##") + _md_table(t.by_group) + _md_table(t.form2, "##")
    if t.annex:
        lines += [f"## {text['annex']}", ""]
        for table in t.annex:
            lines += _md_table(table)
    return "\n".join(lines).encode()


# -- CSV -------------------------------------------------------------------------------------
def spreadsheet_cell(value: Any) -> Any:
    """A spreadsheet must not run a unit name (or anything else) as a formula."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _csv(t: FormTables) -> bytes:
    """One row per unit and a total row: the form 2 table, for a spreadsheet."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(t.form2_units.header)
    writer.writerows([spreadsheet_cell(c) for c in row] for row in t.form2_units.rows)
    return out.getvalue().encode("utf-8-sig")      # the BOM makes Excel read UTF-8


# -- DOCX ------------------------------------------------------------------------------------
def _docx(t: FormTables) -> bytes:
    from docx import Document
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.shared import Cm

    text = t.labels
    document = Document()
    title = document.add_heading(text["title"], level=1)
    title.alignment = WD_ALIGN_PARAGRAPH.CENTER
    document.add_paragraph(t.period).alignment = WD_ALIGN_PARAGRAPH.CENTER
    document.add_heading(text["general"], level=2)
    for label, value in ((text["unit_name"], t.organisation or "…"),
                         (text["assessment"], t.assessment),
                         (text["proposals"], "…")):
        paragraph = document.add_paragraph(style="List Bullet")
        paragraph.add_run(f"{label}: ").bold = True
        paragraph.add_run(value)
    for table, heading in ((t.form1, 2), (t.by_group, 3), (t.form2, 2)):
        _docx_table(document, table, heading)
    if t.charts:
        document.add_heading(text["charts"], level=2)
    for chart in t.charts:
        document.add_picture(io.BytesIO(png(chart)), width=Cm(16))
    if t.annex:
        document.add_heading(text["annex"], level=2)
        for table in t.annex:
            _docx_table(document, table, 3)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def _docx_table(document: Any, table: Table, heading: int) -> None:
    document.add_heading(table.title, level=heading)
    grid = document.add_table(rows=1, cols=len(table.header), style="Table Grid")
    for cell, label in zip(grid.rows[0].cells, table.header, strict=True):
        cell.text = ""
        cell.paragraphs[0].add_run(str(label)).bold = True
    for index, row in enumerate(table.rows):
        for cell, value in zip(grid.add_row().cells, row, strict=True):
            cell.paragraphs[0].add_run(str(value)).bold = index in table.emphasis


# -- XLSX ------------------------------------------------------------------------------------
_SHEET_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")


def _sheet_title(name: str, taken: set[str]) -> str:
    """Excel's limits: 31 characters, none of []:*?/\\, unique ignoring case."""
    base = _SHEET_FORBIDDEN.sub(" ", name).strip()[:31] or "-"
    title, number = base, 2
    while title.lower() in taken:
        suffix = f" ({number})"
        title, number = base[:31 - len(suffix)] + suffix, number + 1
    taken.add(title.lower())
    return title


def _sheet_rows(sheet: Any, rows: list[list[Any]]) -> None:
    for row in rows:
        sheet.append([spreadsheet_cell(value) for value in row])


def _xlsx(t: FormTables) -> bytes:
    """A summary sheet (form 1, by block, the form 2 totals, the annex), then one sheet
    per block with its units' rows; each sheet names its block in full in A1."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    taken: set[str] = set()
    summary = book.active
    summary.title = _sheet_title(t.labels["summary_sheet"], taken)
    rows: list[list[Any]] = [[t.labels["title"]], [t.period],
                             [t.labels["assessment"], t.assessment]]
    for table in (t.form1, t.by_group, Table(t.form2.title, t.form2.header, t.form2.rows[-1:]),
                  *t.annex):
        rows += [[], [table.title], table.header, *table.rows]
    _sheet_rows(summary, rows)
    summary["A1"].font = Font(bold=True, size=14)
    for group, units in t.unit_rows_by_group().items():
        sheet = book.create_sheet(_sheet_title(group, taken))
        _sheet_rows(sheet, [[group], t.form2_units.header, *units])
        sheet["A1"].font = Font(bold=True)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()

"""The collector's web page for the provincial staff: server-rendered HTML, no scripts.

Pages under /ui/: the campaign report for a chosen period (form 1 by block with the
units deployed and not, form 2 per unit, the drafted assessment, the top indicators,
downloads in every format), the hosts found with a "mark handled" button, and the
sensors with their last report. Vietnamese by default, `?lang=en` for English.

Login is with an admin token (`madoc-collector tokens add --admin NAME`), kept in an
HttpOnly, SameSite=Strict cookie limited to /ui/ and checked against the database on
every request, so a revoked token logs out at once and several collector processes
need no shared session store. Forms that change something also check that the
request's Origin (when sent) is this site.
"""

from __future__ import annotations

import time
from datetime import date
from functools import partial
from html import escape
from urllib.parse import quote, urlencode, urlsplit

from aiohttp import web

from sensor.collector.forms import FORMATS, LABELS, FormTables, Table, form_tables
from sensor.collector.http import (
    CONFIG,
    MAX_NOTE,
    STORE,
    UI,
    host_filter,
    host_id_of,
    host_page_query,
    hosts_csv,
    in_db,
    page_time,
    read_evidence,
    report_query,
    report_response,
)
from sensor.collector.report import Report, ReportError, campaign_report
from sensor.collector.store import Identity
from sensor.sinks.eve import PROTO_NAMES

COOKIE = "madoc_token"
SESSION_SECONDS = 12 * 3600

TEXT: dict[str, dict[str, str]] = {
    "vi": {
        "app": "madoc — chiến dịch làm sạch mã độc", "report": "Báo cáo",
        "hosts": "Máy tính", "sensors": "Thiết bị giám sát", "logout": "Đăng xuất",
        "login": "Đăng nhập", "token": "Mã truy cập quản trị (admin token)",
        "bad_token": "Mã truy cập không đúng, đã bị thu hồi hoặc không phải của quản trị.",
        "week": "Tuần (YYYY-Www)", "from": "Từ ngày", "to": "Đến ngày", "show": "Xem",
        "period_hint": "Để trống: tuần đầy đủ gần nhất.",
        "download": "Tải về", "deployed_units": "Đã triển khai",
        "not_deployed": "Chưa triển khai", "top": "Địa chỉ độc hại được kết nối nhiều nhất",
        "assessment_hint": "Bản nháp từ số liệu, chỉnh sửa trước khi gửi.",
        "infected": "Chưa xử lý", "handled": "Đã xử lý", "clean": "Sạch",
        "mark": "Đánh dấu đã xử lý", "status": "Trạng thái", "unit": "Đơn vị",
        "first_seen": "Lần đầu", "last_hit": "Lần kết nối cuối", "hits": "Số lượt",
        "indicators": "Số địa chỉ", "last_seen": "Lần gửi cuối", "batches": "Số lô",
        "alerts": "Cảnh báo", "dropped": "Cảnh báo bị bỏ", "never": "chưa bao giờ",
        "none": "Không có.", "scope": "Phạm vi", "province": "toàn tỉnh",
        "block": "Khối", "sensor": "Thiết bị giám sát", "indicator": "Địa chỉ độc hại",
        "search": "Tìm IP, MAC hoặc địa chỉ độc hại", "all": "Tất cả", "filter": "Lọc",
        "found_n": "{n} máy tính", "prev": "« Trang trước", "next": "Trang sau »",
        "open": "Xem", "host": "Máy tính", "timeline": "Diễn biến trạng thái",
        "evidence": "Các địa chỉ độc hại đã kết nối", "seen_as": "Phát hiện qua",
        "first": "Lần đầu", "last": "Lần cuối", "by_day": "Số lượt theo ngày",
        "addresses": "Địa chỉ IP và MAC đã dùng", "audit": "Nhật ký xử lý",
        "recent_alerts": "Cảnh báo gần nhất", "when": "Thời điểm", "by": "Người thực hiện",
        "note": "Nội dung xử lý", "note_hint": "Đã làm gì, ví dụ: quét bằng công cụ của "
        "NCSC, đã gỡ mã độc", "need_note": "Hãy ghi nội dung xử lý.",
        "first_hit": "kết nối đầu tiên đến địa chỉ độc hại",
        "hit_after_handled": "lại kết nối đến địa chỉ độc hại sau khi xử lý",
        "marked": "được đánh dấu đã xử lý", "quiet_period": "không còn kết nối trong thời gian "
        "theo dõi", "handled_action": "đánh dấu đã xử lý", "flow": "Kết nối",
        "seen": "Tên/địa chỉ thấy", "silent": "không gửi dữ liệu trong kỳ",
    },
    "en": {
        "app": "madoc — malware clean-up campaign", "report": "Report",
        "hosts": "Computers", "sensors": "Sensors", "logout": "Log out",
        "login": "Log in", "token": "Admin token",
        "bad_token": "That token is wrong, revoked, or not an admin's.",
        "week": "Week (YYYY-Www)", "from": "From", "to": "To", "show": "Show",
        "period_hint": "Empty: the last full week.",
        "download": "Download", "deployed_units": "Deployed",
        "not_deployed": "Not deployed", "top": "Most contacted malicious addresses",
        "assessment_hint": "Drafted from the numbers; edit before sending.",
        "infected": "Infected", "handled": "Handled", "clean": "Clean",
        "mark": "Mark handled", "status": "Status", "unit": "Unit",
        "first_seen": "First seen", "last_hit": "Last hit", "hits": "Hits",
        "indicators": "Indicators", "last_seen": "Last report", "batches": "Batches",
        "alerts": "Alerts", "dropped": "Alerts dropped", "never": "never",
        "none": "None.", "scope": "Scope", "province": "the whole province",
        "block": "Block", "sensor": "Sensor", "indicator": "Indicator",
        "search": "Search IP, MAC or indicator", "all": "All", "filter": "Filter",
        "found_n": "{n} computers", "prev": "« Previous", "next": "Next »",
        "open": "Open", "host": "Computer", "timeline": "Status over time",
        "evidence": "Malicious addresses contacted", "seen_as": "Seen as",
        "first": "First", "last": "Last", "by_day": "Hits by day",
        "addresses": "IP and MAC addresses used", "audit": "Audit log",
        "recent_alerts": "Latest alerts", "when": "When", "by": "By",
        "note": "What was done", "note_hint": "What was done, e.g. scanned with NCSC's tool, "
        "malware removed", "need_note": "Say what was done.",
        "first_hit": "first contact with a malicious address",
        "hit_after_handled": "contacted a malicious address again after handling",
        "marked": "marked handled", "quiet_period": "no contact during the quiet period",
        "handled_action": "marked handled", "flow": "Connection",
        "seen": "Name/address seen", "silent": "sent nothing in the period",
    },
}

STYLE = """body{font-family:system-ui,sans-serif;margin:0;color:#1b1b1b}
header{background:#8b1a1a;color:#fff;padding:.6em 1.2em;display:flex;gap:1.5em;align-items:center}
header a,header button{color:#fff;text-decoration:none;background:none;border:0;
font:inherit;cursor:pointer}
header .app{font-weight:600;margin-right:auto}main{padding:1em 1.2em;max-width:80em}
table{border-collapse:collapse;margin:.5em 0 1.2em}
th,td{border:1px solid #bbb;padding:.25em .5em;text-align:left}
th{background:#f1ebe4}td.n{text-align:right}form.inline{display:inline}
tr.block td{font-weight:600;background:#faf6f1}figure{margin:.5em 0}
figure svg{max-width:100%;height:auto}
.period input{width:9em}.downloads a{margin-right:.8em}
textarea{width:100%;min-height:6em;font:inherit}
.error{color:#a00}"""


def _lang(request: web.Request) -> str:
    return "en" if request.query.get("lang") == "en" else "vi"


def _page(request: web.Request, title: str, body: str, logged_in: bool = True) -> web.Response:
    lang, text = _lang(request), TEXT[_lang(request)]
    suffix = "?lang=en" if lang == "en" else ""
    nav = ""
    if logged_in:
        identity: Identity = request["identity"]
        scope = identity.unit or identity.group or text["province"]
        nav = (f'<span id="scope">{escape(identity.name)} · {text["scope"]}: '
               f'{escape(scope)}</span>'
               f'<a href="{UI}/{suffix}">{text["report"]}</a>'
               f'<a href="{UI}/hosts{suffix}">{text["hosts"]}</a>'
               f'<a href="{UI}/sensors{suffix}">{text["sensors"]}</a>'
               f'<form class="inline" method="post" action="{UI}/logout">'
               f'<button type="submit">{text["logout"]}</button></form>')
    html = (f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>{escape(title)} — madoc</title><style>{STYLE}</style></head><body>'
            f'<header><span class="app">{text["app"]}</span>{nav}</header>'
            f'<main><h1>{escape(title)}</h1>{body}</main></body></html>')
    return web.Response(text=html, content_type="text/html", charset="utf-8",
                        headers={"Content-Security-Policy": "default-src 'none'; "
                                 "style-src 'unsafe-inline'; form-action 'self'",
                                 "X-Frame-Options": "DENY", "Cache-Control": "no-store"})


def _orgs(tables: FormTables) -> str:
    """The organisations below (a national collector's provinces) and the addresses hit
    in most of them: the first two tables of the annex when there are organisations."""
    orgs, indicators = tables.annex[:2]
    return (f"<section id='orgs'><h2>{escape(orgs.title)}</h2>"
            f"{_table(orgs, row_ids=0, numeric_from=1)}"
            f"<h3>{escape(indicators.title)}</h3>{_table(indicators, numeric_from=2)}</section>")


def _charts(tables: FormTables) -> str:
    """The report's charts, inline SVG (no scripts, nothing fetched)."""
    return (f"<section id='charts'><h2>{escape(tables.labels['charts'])}</h2>"
            f"{''.join(f'<figure>{chart}</figure>' for chart in tables.charts)}</section>")


def _none(request: web.Request) -> str:
    return f"<p>{TEXT[_lang(request)]['none']}</p>"


def _unit_link(request: web.Request, unit: str) -> str:
    """A link to the unit's page, for the period (and language) this page shows."""
    keep = {k: v for k, v in request.query.items() if k in ("week", "from", "to", "lang")}
    query = f"?{escape(urlencode(keep))}" if keep else ""
    return f'<a href="{UI}/units/{quote(unit, safe="")}{query}">{escape(unit)}</a>'


def _table(table: Table, row_ids: int | None = None, numeric_from: int = 99,
           units: tuple[web.Request, int] | None = None, unlinked: frozenset[str] = frozenset()
           ) -> str:
    """A form table as HTML; `row_ids` names the column whose value tags each row
    (data-key), so a reader (or a test) can find a unit's row; `units` (the request and
    a column) makes that column's unit names links to their unit's page, but for those
    `unlinked` (a department's units: their page is the department's collector)."""
    head = "".join(f"<th>{escape(str(h))}</th>" for h in table.header)
    rows = []
    for index, row in enumerate(table.rows):
        key = f' data-key="{escape(str(row[row_ids]))}"' if row_ids is not None else ""
        if index in table.emphasis:         # a block's heading row, or the total
            key += ' class="block"'
        linked = units[1] if units and index not in table.emphasis and str(
            row[units[1]]) not in unlinked else -1
        cells = "".join(
            f'<td{" class=n" if i >= numeric_from else ""}>'
            f'{_unit_link(units[0], str(c)) if i == linked else escape(str(c))}</td>'
            for i, c in enumerate(row))
        rows.append(f"<tr{key}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


async def _admin(request: web.Request) -> Identity | None:
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    identity = await in_db(request, request.app[STORE].authenticate, token)
    return identity if identity and identity.kind == "admin" else None


async def _require_admin(request: web.Request) -> Identity:
    """The logged-in staff account (its scope bounds every page), or off to the login."""
    identity = await _admin(request)
    if identity is None:
        raise web.HTTPFound(f"{UI}/login")
    request["identity"] = identity
    return identity


def _same_origin(request: web.Request) -> None:
    """Forms that change state come from our own pages (SameSite=Strict stops most of
    the rest; this stops a browser that sends an Origin but ignores SameSite)."""
    origin = request.headers.get("Origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.host:
        raise web.HTTPForbidden(reason="cross-site form")


async def login_page(request: web.Request, failed: bool = False) -> web.Response:
    text = TEXT[_lang(request)]
    error = f'<p class="error">{text["bad_token"]}</p>' if failed else ""
    body = (f'{error}<form method="post" action="{UI}/login">'
            f'<label>{text["token"]} <input type="password" name="token" id="token" '
            f'autocomplete="current-password" required></label> '
            f'<button type="submit" id="login">{text["login"]}</button></form>')
    return _page(request, text["login"], body, logged_in=False)


async def login(request: web.Request) -> web.StreamResponse:
    _same_origin(request)
    token = str((await request.post()).get("token", "")).strip()
    identity = await in_db(request, request.app[STORE].authenticate, token) if token else None
    if not identity or identity.kind != "admin":
        response = await login_page(request, failed=True)
        response.set_status(401)
        return response
    response = web.HTTPFound(f"{UI}/")
    response.set_cookie(COOKIE, token, max_age=SESSION_SECONDS, path=UI, httponly=True,
                        samesite="Strict", secure=request.app[CONFIG].tls_cert is not None)
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    _same_origin(request)
    response = web.HTTPFound(f"{UI}/login")
    response.del_cookie(COOKIE, path=UI)
    raise response


def _period_form(request: web.Request) -> str:
    """The period's fields, sent back to the page that shows them."""
    text, query = TEXT[_lang(request)], request.query
    fields = "".join(
        f'<label>{text[name]} <input type="text" name="{name}" id="{name}" '
        f'value="{escape(query.get(name, ""))}" placeholder="{placeholder}"></label> '
        for name, placeholder in (("week", "2022-W38"), ("from", "2022-08-26"),
                                  ("to", "2022-09-28")))
    lang = '<input type="hidden" name="lang" value="en">' if _lang(request) == "en" else ""
    return (f'<form class="period" method="get" action="{escape(request.path)}">'
            f'{fields}{lang}'
            f'<button type="submit" id="show">{text["show"]}</button> '
            f'<small>{text["period_hint"]}</small></form>')


def _downloads(request: web.Request, report: Report) -> str:
    text = TEXT[_lang(request)]
    base = {"from": report.period.first.isoformat(), "to": report.period.last.isoformat(),
            "lang": _lang(request)}
    links = "".join(f'<a href="{UI}/download?{escape(urlencode({**base, "format": fmt}))}">'
                    f'{fmt.upper()}</a>' for fmt in FORMATS)
    return f'<p class="downloads">{text["download"]}: {links}</p>'


def _blocks(request: web.Request, report: Report) -> str:
    text = TEXT[_lang(request)]
    out = []
    for group in report.by_group():
        units = [u for u in report.units if u.group == group]
        done = ", ".join(escape(u.unit) for u in units if u.deployed) or "—"
        missing = ", ".join(escape(u.unit) for u in units if not u.deployed) or "—"
        out.append(f"<details><summary>{escape(group or '-')}: "
                   f"{sum(u.deployed for u in units)}/{len(units)}</summary>"
                   f"<p><b>{text['deployed_units']}:</b> {done}</p>"
                   f"<p><b>{text['not_deployed']}:</b> {missing}</p></details>")
    return "".join(out)


async def report_page(request: web.Request) -> web.Response:
    scope = (await _require_admin(request)).scope
    lang = _lang(request)
    text, labels = TEXT[lang], LABELS[lang]
    period, unit, group = report_query(request)
    try:
        report = await in_db(request, campaign_report, request.app[STORE], period, unit, group,
                             scope)
    except ReportError as err:
        raise web.HTTPBadRequest(reason=str(err)) from None
    top = await in_db(request, lambda: request.app[STORE].top_indicators(
        scope.narrow(unit, group), since_day=period.first.isoformat(),
        until_day=period.last.isoformat(), limit=10))
    tables = form_tables(report, lang)
    below = frozenset(u.unit for u in report.units if u.department)   # no page here
    top_table = Table(text["top"], [labels["indicator"], labels["kind"], labels["hits"],
                                    labels["hosts"]],
                      [[t["indicator"], t["indicator_type"], t["hits"], t["hosts"]]
                       for t in top])
    body = (f"{_period_form(request)}<p id='period'>{escape(tables.period)}</p>"
            f"{_downloads(request, report)}"
            f"<h2>{labels['general']}</h2><p><b>{labels['assessment']}</b> "
            f"<small>({text['assessment_hint']})</small></p>"
            f"<textarea id='assessment'>{escape(tables.assessment)}</textarea>"
            f"<h2>{labels['figures']}</h2>{_table(tables.form1, numeric_from=2)}"
            f"<h3>{labels['by_group']}</h3>{_table(tables.by_group, numeric_from=1)}"
            f"{_blocks(request, report)}"
            f"<h2>{labels['form2_title']}</h2>"
            f"{_table(tables.form2, row_ids=1, numeric_from=4, units=(request, 1), unlinked=below)}"
            f"{_orgs(tables) if report.orgs else ''}"
            f"{_charts(tables)}"
            f"<h2>{text['top']}</h2>"
            f"{_table(top_table, numeric_from=2) if top else _none(request)}")
    return _page(request, labels["title"], body)


async def download(request: web.Request) -> web.Response:
    scope = (await _require_admin(request)).scope
    return await report_response(request, request.query.get("format", "md"), _lang(request),
                                 scope)


PAGE_SIZE = 50
_LIST_COLUMNS = (("unit", "unit"), ("ip", "ip"), ("mac", "mac"), ("sensor", "sensor"),
                 ("hits", "hits"), ("indicators", "indicators"), ("last_hit", "last_hit"),
                 ("status", "status"))


def _query_link(request: web.Request, **changes: str | int | None) -> str:
    """This page's address with some query fields changed (None drops one)."""
    query = {**request.query, **{k: str(v) for k, v in changes.items() if v is not None}}
    for name in (k for k, v in changes.items() if v is None):
        query.pop(name, None)
    return f"{request.path}?{escape(urlencode(query))}"


def _host_filters(request: web.Request, text: dict[str, str]) -> str:
    query = request.query

    def field(name: str, label: str) -> str:
        return (f'<label>{label} <input type="text" name="{name}" id="f-{name}" '
                f'value="{escape(query.get(name, ""))}"></label> ')
    statuses = "".join(
        f'<option value="{value}"{" selected" if query.get("status", "") == value else ""}>'
        f'{text[value] if value else text["all"]}</option>'
        for value in ("", "infected", "handled", "clean"))
    lang = '<input type="hidden" name="lang" value="en">' if _lang(request) == "en" else ""
    return (f'<form class="filters" method="get" action="{UI}/hosts">'
            f'{field("search", text["search"])}{field("group", text["block"])}'
            f'{field("unit", text["unit"])}{field("sensor", text["sensor"])}'
            f'{field("indicator", text["indicator"])}'
            f'<label>{text["status"]} <select name="status" id="f-status">{statuses}'
            f'</select></label> {lang}'
            f'<button type="submit" id="filter">{text["filter"]}</button></form>')


async def hosts_page(request: web.Request) -> web.Response:
    """The scope's computers: filtered, searched, sorted, paged; a CSV of the same list."""
    scope = (await _require_admin(request)).scope
    lang = _lang(request)
    text, labels = TEXT[lang], LABELS[lang]
    wanted = host_filter(request)
    sort, descending, offset, limit = host_page_query(request, PAGE_SIZE, 100_000)
    store = request.app[STORE]
    if request.path.endswith(".csv"):
        hosts = await in_db(request, partial(store.hosts, scope, wanted, sort, descending, 0,
                                             100_000))
        return hosts_csv(request, hosts)
    hosts = await in_db(request, partial(store.hosts, scope, wanted, sort, descending, offset,
                                         limit))
    total = await in_db(request, store.count_hosts, scope, wanted)
    suffix = "?lang=en" if lang == "en" else ""
    rows = []
    for host in hosts:
        rows.append(f'<tr data-ip="{escape(host.ip)}" data-id="{host.id}">'
                    f'<td>{_unit_link(request, host.unit)}</td>'
                    f'<td><a href="{UI}/hosts/{host.id}{suffix}" class="host">'
                    f'{escape(host.ip)}</a></td><td>{escape(host.mac or "")}</td>'
                    f'<td>{escape(host.sensor)}</td><td class=n>{host.hits}</td>'
                    f'<td class=n>{host.indicators}</td>'
                    f'<td>{escape(page_time(request, host.last_hit))}</td>'
                    f'<td>{text[host.status]}</td></tr>')
    head = []
    for key, label in _LIST_COLUMNS:
        name = labels[label] if label in ("ip", "mac", "sensor") else text[label]
        flip = "asc" if sort == key and descending else "desc" if sort == key else "asc"
        mark = (" ▼" if descending else " ▲") if sort == key else ""
        head.append(f'<th><a href="{_query_link(request, sort=key, order=flip, offset=None)}"'
                    f' id="sort-{key}">{name}{mark}</a></th>')
    pages = []
    if offset > 0:
        pages.append(f'<a id="prev" href="{_query_link(request, offset=max(0, offset - limit))}"'
                     f'>{text["prev"]}</a>')
    if offset + limit < total:
        pages.append(f'<a id="next" href="{_query_link(request, offset=offset + limit)}">'
                     f'{text["next"]}</a>')
    csv_link = f"{UI}/hosts.csv?{escape(urlencode(request.query))}"
    summary = (f'<p><span id="total">{text["found_n"].format(n=total)}</span> · '
               f'<a href="{csv_link}" id="csv">CSV</a> {" ".join(pages)}</p>')
    table = (f"<table id='hosts'><thead><tr>{''.join(head)}</tr></thead>"
             f"<tbody>{''.join(rows)}</tbody></table>" if rows else _none(request))
    return _page(request, text["hosts"], f"{_host_filters(request, text)}{summary}{table}")


def _rows(header: list[str], rows: list[list[str]], table_id: str) -> str:
    """A table of cells already escaped (some hold links)."""
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table id='{table_id}'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


async def host_page(request: web.Request) -> web.Response:
    """One computer and the evidence against it, with the form that marks it handled."""
    identity = await _require_admin(request)
    evidence = await read_evidence(request, identity)
    if evidence is None:
        raise web.HTTPNotFound(reason="no such host")
    lang = _lang(request)
    text, labels = TEXT[lang], LABELS[lang]
    host, when = evidence.host, partial(page_time, request)
    suffix = "?lang=en" if lang == "en" else ""
    facts = [[text["unit"], _unit_link(request, host.unit)],
             [labels["sensor"], escape(host.sensor)], [labels["ip"], escape(host.ip)],
             [labels["mac"], escape(host.mac or "")],
             [text["status"], f'<b id="status">{text[host.status]}</b>'],
             [text["first_seen"], when(host.first_seen)], [text["last_hit"], when(host.last_hit)]]
    summary = "<table id='facts'>" + "".join(
        f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in facts) + "</table>"
    timeline = _rows([text["when"], text["status"], ""], [
        [when(c.ts), text[c.status],
         escape(text[c.why] + (f" ({c.by})" if c.by else ""))] for c in evidence.timeline],
        "timeline")
    indicators = _rows(
        [text["indicator"], labels["kind"], text["seen_as"], text["first"], text["last"],
         text["hits"], text["by_day"]],
        [[escape(i.indicator), escape(i.indicator_type), escape(", ".join(i.matches)),
          when(i.first), when(i.last), str(i.hits),
          escape(", ".join(f"{date.fromisoformat(d).strftime('%d/%m')}: {n}"
                           for d, n in sorted(i.hits_by_day.items())))]
         for i in evidence.indicators], "indicators")
    addresses = _rows([labels["ip"], labels["mac"], labels["sensor"], text["first"],
                       text["last"]],
                      [[escape(a.ip), escape(a.mac or ""), escape(a.sensor), when(a.first_seen),
                        when(a.last_seen)] for a in evidence.addresses], "addresses")
    audit = _rows([text["when"], text["by"], "", text["note"]],
                  [[when(a.ts), escape(a.by), text["handled_action"], escape(a.note)]
                   for a in evidence.actions], "audit") if evidence.actions else \
        f"<p id='audit'>{text['none']}</p>"
    alerts = _rows([text["when"], labels["sensor"], text["indicator"], text["seen_as"],
                    text["seen"], text["flow"]],
                   [[when(a["ts"]), escape(a["sensor"]), escape(a["indicator"]),
                     escape(a["match"]), escape(a["seen"]),
                     escape(f'{a["src_ip"]}:{a["src_port"]} → {a["dest_ip"]}:{a["dest_port"]}'
                            f' ({PROTO_NAMES.get(a["proto"], a["proto"])})')]
                    for a in evidence.alerts], "alerts") if evidence.alerts else \
        _none(request)
    form = ""
    if host.status == "infected":
        form = (f'<form method="post" action="{UI}/hosts/{host.id}/handled{suffix}" '
                f'id="handle"><label>{text["note"]}<textarea name="note" id="note" required '
                f'maxlength="{MAX_NOTE}" placeholder="{escape(text["note_hint"])}">'
                f'</textarea></label><button type="submit" id="mark">{text["mark"]}</button>'
                f'</form>')
    body = (f"{summary}{form}<h2>{text['timeline']}</h2>{timeline}"
            f"<h2>{text['evidence']}</h2>{indicators}<h2>{text['audit']}</h2>{audit}"
            f"<h2>{text['addresses']}</h2>{addresses}"
            f"<h2>{text['recent_alerts']}</h2>{alerts}")
    return _page(request, f"{text['host']} {host.ip}", body)


async def mark_handled(request: web.Request) -> web.StreamResponse:
    identity = await _require_admin(request)
    _same_origin(request)
    note = str((await request.post()).get("note", "")).strip()
    if not note or len(note) > MAX_NOTE:
        raise web.HTTPBadRequest(reason=TEXT[_lang(request)]["need_note"])
    host_id = host_id_of(request)
    if not await in_db(request, request.app[STORE].mark_handled, host_id, identity.name,
                       time.time(), identity.scope, note):
        raise web.HTTPNotFound(reason="no such host")
    suffix = "?lang=en" if _lang(request) == "en" else ""
    raise web.HTTPFound(f"{UI}/hosts/{host_id}{suffix}")


async def sensors_page(request: web.Request) -> web.Response:
    scope = (await _require_admin(request)).scope
    text = TEXT[_lang(request)]
    sensors = await in_db(request, request.app[STORE].sensors, scope)
    header = [text["sensors"], text["unit"], text["last_seen"], text["batches"],
              text["alerts"], text["dropped"]]
    table = Table("", header, [[s["id"], s["unit"], page_time(request, s["last_seen"]) or
                                text["never"], s["batches"], s["alerts"], s["dropped_alerts"]]
                               for s in sensors])
    return _page(request, text["sensors"],
                 _table(table, row_ids=0, numeric_from=3, units=(request, 1)))


async def unit_page(request: web.Request) -> web.Response:
    """One unit: its Form 2 figures for the period, its sensors (silent ones flagged),
    its computers still infected and its top indicators."""
    scope = (await _require_admin(request)).scope
    lang = _lang(request)
    text, labels = TEXT[lang], LABELS[lang]
    name = request.match_info["name"]
    period, _, _ = report_query(request)
    try:
        report = await in_db(request, campaign_report, request.app[STORE], period, name, None,
                             scope)
    except ReportError:
        raise web.HTTPNotFound(reason="no such unit") from None
    unit = report.units[0]
    sensors = await in_db(request, request.app[STORE].sensors, scope.narrow(name))
    silent = {s.id for s in report.silent_sensors}
    figures = Table("", [labels["sensors"], labels["covered"], labels["found"],
                         labels["handled"]],
                    [[f"{unit.sensors_reporting}/{unit.sensors}", unit.computers_covered,
                      unit.computers_found, unit.computers_handled]])
    sensor_rows = Table("", [text["sensors"], text["last_seen"], text["batches"],
                             text["alerts"], ""],
                        [[s["id"], page_time(request, s["last_seen"]) or text["never"],
                          s["batches"], s["alerts"], text["silent"] if s["id"] in silent else ""]
                         for s in sensors])
    top = Table("", [labels["indicator"], labels["kind"], labels["matches"], labels["hits"],
                     labels["hosts"]],
                [[i.indicator, i.indicator_type, ", ".join(i.matches), i.hits, i.hosts]
                 for i in unit.top_indicators])
    tables = form_tables(report, lang)
    infected = f"{UI}/hosts?{escape(urlencode({'unit': name, 'status': 'infected', 'lang': lang}))}"
    body = (f"{_period_form(request)}<p id='period'>{escape(tables.period)}"
            f"</p><p>{text['block']}: {escape(unit.group or '-')}</p>"
            f"<h2>{labels['form2_title']}</h2>{_table(figures, numeric_from=1)}"
            f"{_charts(tables)}"
            f"<h2>{text['sensors']}</h2>{_table(sensor_rows, row_ids=0, numeric_from=2)}"
            f"<h2>{text['hosts']}</h2><p><a id='infected' href='{infected}'>"
            f"{text['infected']}: {len(unit.hosts_still_infected)}</a></p>"
            f"<h2>{text['top']}</h2>"
            f"{_table(top, numeric_from=3) if top.rows else _none(request)}")
    return _page(request, name, body)


async def root(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound(f"{UI}/")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", root)
    app.router.add_get(f"{UI}/login", login_page)
    app.router.add_post(f"{UI}/login", login)
    app.router.add_post(f"{UI}/logout", logout)
    app.router.add_get(f"{UI}/", report_page)
    app.router.add_get(f"{UI}/download", download)
    app.router.add_get(f"{UI}/hosts", hosts_page)
    app.router.add_get(f"{UI}/hosts.csv", hosts_page)
    app.router.add_get(f"{UI}/hosts/{{id}}", host_page)
    app.router.add_post(f"{UI}/hosts/{{id}}/handled", mark_handled)
    app.router.add_get(f"{UI}/sensors", sensors_page)
    app.router.add_get(f"{UI}/units/{{name}}", unit_page)


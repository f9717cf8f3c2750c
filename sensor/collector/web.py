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
from html import escape
from urllib.parse import urlencode, urlsplit

from aiohttp import web

from sensor.collector.forms import FORMATS, LABELS, Table, form_tables
from sensor.collector.http import (
    CONFIG,
    STORE,
    UI,
    host_id_of,
    in_db,
    page_time,
    report_query,
    report_response,
)
from sensor.collector.report import Report, ReportError, campaign_report

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
        "none": "Không có.",
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
        "none": "None.",
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
tr.block td{font-weight:600;background:#faf6f1}
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
        nav = (f'<a href="{UI}/{suffix}">{text["report"]}</a>'
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


def _table(table: Table, row_ids: int | None = None, numeric_from: int = 99) -> str:
    """A form table as HTML; `row_ids` names the column whose value tags each row
    (data-key), so a reader (or a test) can find a unit's row."""
    head = "".join(f"<th>{escape(str(h))}</th>" for h in table.header)
    rows = []
    for index, row in enumerate(table.rows):
        key = f' data-key="{escape(str(row[row_ids]))}"' if row_ids is not None else ""
        if index in table.emphasis:         # a block's heading row, or the total
            key += ' class="block"'
        cells = "".join(f'<td{" class=n" if i >= numeric_from else ""}>{escape(str(c))}</td>'
                        for i, c in enumerate(row))
        rows.append(f"<tr{key}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


async def _admin(request: web.Request) -> str | None:
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    identity = await in_db(request, request.app[STORE].authenticate, token)
    return identity[1] if identity and identity[0] == "admin" else None


async def _require_admin(request: web.Request) -> str:
    name = await _admin(request)
    if name is None:
        raise web.HTTPFound(f"{UI}/login")
    return name


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
    if not identity or identity[0] != "admin":
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
    text, query = TEXT[_lang(request)], request.query
    fields = "".join(
        f'<label>{text[name]} <input type="text" name="{name}" id="{name}" '
        f'value="{escape(query.get(name, ""))}" placeholder="{placeholder}"></label> '
        for name, placeholder in (("week", "2022-W38"), ("from", "2022-08-26"),
                                  ("to", "2022-09-28")))
    lang = '<input type="hidden" name="lang" value="en">' if _lang(request) == "en" else ""
    return (f'<form class="period" method="get" action="{UI}/">{fields}{lang}'
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
    await _require_admin(request)
    lang = _lang(request)
    text, labels = TEXT[lang], LABELS[lang]
    period, unit, group = report_query(request)
    try:
        report = await in_db(request, campaign_report, request.app[STORE], period, unit, group)
    except ReportError as err:
        raise web.HTTPBadRequest(reason=str(err)) from None
    top = await in_db(request, lambda: request.app[STORE].top_indicators(
        unit=unit, since_day=period.first.isoformat(), until_day=period.last.isoformat(),
        limit=10))
    tables = form_tables(report, lang)
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
            f"{_table(tables.form2, row_ids=1, numeric_from=4)}"
            f"<h2>{text['top']}</h2>"
            f"{_table(top_table, numeric_from=2) if top else '<p>' + text['none'] + '</p>'}")
    return _page(request, labels["title"], body)


async def download(request: web.Request) -> web.Response:
    await _require_admin(request)
    return await report_response(request, request.query.get("format", "md"), _lang(request))


async def hosts_page(request: web.Request) -> web.Response:
    await _require_admin(request)
    lang = _lang(request)
    text, labels = TEXT[lang], LABELS[lang]
    status = request.query.get("status", "infected")
    if status not in ("infected", "handled"):
        raise web.HTTPBadRequest(reason="status: infected or handled")
    hosts = await in_db(request, lambda: request.app[STORE].hosts(
        unit=request.query.get("unit") or None, status=status, limit=5000))
    suffix = "&lang=en" if lang == "en" else ""
    tabs = " | ".join(f'<a href="{UI}/hosts?status={s}{suffix}">{text[s]}</a>'
                      for s in ("infected", "handled"))
    rows = []
    for host in hosts:
        action = ""
        if host.status == "infected":
            action = (f'<form class="inline" method="post" action="{UI}/hosts/{host.id}/'
                      f'handled"><button type="submit" id="handle-{host.id}">'
                      f'{text["mark"]}</button></form>')
        rows.append(f'<tr data-ip="{escape(host.ip)}"><td>{escape(host.unit)}</td>'
                    f'<td>{escape(host.ip)}</td><td>{escape(host.mac or "")}</td>'
                    f'<td>{escape(host.sensor)}</td><td class=n>{host.hits}</td>'
                    f'<td class=n>{host.indicators}</td>'
                    f'<td>{escape(page_time(request, host.last_hit))}</td>'
                    f'<td>{text[host.status]}</td><td>{action}</td></tr>')
    head = "".join(f"<th>{h}</th>" for h in (
        text["unit"], labels["ip"], labels["mac"], labels["sensor"], text["hits"],
        text["indicators"], text["last_hit"], text["status"], ""))
    table = (f"<table id='hosts'><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}"
             f"</tbody></table>" if rows else f"<p>{text['none']}</p>")
    return _page(request, f"{text['hosts']}: {text[status]}", f"<p>{tabs}</p>{table}")


async def mark_handled(request: web.Request) -> web.StreamResponse:
    admin = await _require_admin(request)
    _same_origin(request)
    if not await in_db(request, request.app[STORE].mark_handled, host_id_of(request), admin,
                     time.time()):
        raise web.HTTPNotFound(reason="no such host")
    referer = urlsplit(request.headers.get("Referer", ""))
    back = f"{UI}/hosts"
    if referer.netloc == request.host and referer.path.startswith(UI):
        back = referer.path + (f"?{referer.query}" if referer.query else "")
    raise web.HTTPFound(back)


async def sensors_page(request: web.Request) -> web.Response:
    await _require_admin(request)
    text = TEXT[_lang(request)]
    sensors = await in_db(request, request.app[STORE].sensors)
    header = [text["sensors"], text["unit"], text["last_seen"], text["batches"],
              text["alerts"], text["dropped"]]
    table = Table("", header, [[s["id"], s["unit"], page_time(request, s["last_seen"]) or
                                text["never"], s["batches"], s["alerts"], s["dropped_alerts"]]
                               for s in sensors])
    return _page(request, text["sensors"], _table(table, row_ids=0, numeric_from=3))


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
    app.router.add_post(f"{UI}/hosts/{{id}}/handled", mark_handled)
    app.router.add_get(f"{UI}/sensors", sensors_page)


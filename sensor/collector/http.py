"""What the API and the staff's page share: the application's keys, JSON answers,
the database's thread pool, times in the collector's zone, and a report as a response."""

from __future__ import annotations

import asyncio
import csv
import io
import ssl
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from functools import partial
from typing import Any, TypeVar
from urllib.parse import quote

import orjson
from aiohttp import web

from sensor.collector.config import CollectorConfig
from sensor.collector.evidence import HostEvidence, host_evidence
from sensor.collector.forms import FORMATS as REPORT_FORMATS
from sensor.collector.forms import (
    LANGS,
    MEDIA_TYPES,
    render,
    report_file_name,
    spreadsheet_cell,
)
from sensor.collector.metrics import CollectorMetrics
from sensor.collector.report import Period, ReportError, campaign_report, period_from
from sensor.collector.store import HOST_SORTS, STATUSES, Host, HostFilter, Identity, Scope, Store

API = "/api/v1"
OPEN_PATHS = {f"{API}/healthz", f"{API}/openapi.json"}   # load balancers and doc readers
UI = "/ui"      # the web page (sensor/collector/web.py), logged in by cookie
STORE = web.AppKey("store", Store)
CONFIG = web.AppKey("config", CollectorConfig)
EXECUTOR = web.AppKey("executor", ThreadPoolExecutor)
METRICS = web.AppKey("metrics", CollectorMetrics)
METRICS_RUNNER = web.AppKey("metrics_runner", web.AppRunner)
METRICS_TLS = web.AppKey("metrics_tls", ssl.SSLContext)
T = TypeVar("T")
MAX_NOTE = 2000         # characters of a "handled" note


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def error_response(status: int, message: str) -> web.Response:
    return json_response({"error": message}, status)


async def in_db(request: web.Request, function: Callable[..., T], *args: Any) -> T:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(request.app[EXECUTOR], partial(function, *args))


def is_page(path: str) -> bool:
    """Paths the web page serves (cookie login) rather than the API (bearer tokens)."""
    return path == "/" or path == UI or path.startswith(f"{UI}/")


def iso_time(request: web.Request, epoch: float | None) -> str | None:
    """A moment for the API: ISO 8601 in the collector's time zone, with its offset."""
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, request.app[CONFIG].tz).isoformat(timespec="seconds")


def page_time(request: web.Request, epoch: float | None) -> str:
    """A moment for the staff's page: `dd/mm/yyyy HH:MM` in the collector's time zone."""
    if epoch is None:
        return ""
    return datetime.fromtimestamp(epoch, request.app[CONFIG].tz).strftime("%d/%m/%Y %H:%M")


def host_id_of(request: web.Request) -> int:
    text = request.match_info["id"]
    if not text.isdigit() or len(text) > 18:
        raise web.HTTPBadRequest(reason="host id: expected an integer")
    return int(text)


def host_filter(request: web.Request) -> HostFilter:
    """The computer list's filters from a query (the page's and the API's alike)."""
    query = request.query
    status = query.get("status") or None
    if status is not None and status not in STATUSES:
        raise web.HTTPBadRequest(reason=f"status: expected one of {', '.join(STATUSES)}")
    fields = {name: (query.get(name) or "").strip()[:256] or None
              for name in ("unit", "group", "sensor", "indicator", "search")}
    return HostFilter(status=status, **fields)


def host_page_query(request: web.Request, default_limit: int,
                    ceiling: int) -> tuple[str, bool, int, int]:
    """(sort column, descending, offset, limit) of a computer list request."""
    query = request.query
    sort = query.get("sort") or "id"
    if sort not in HOST_SORTS:
        raise web.HTTPBadRequest(reason=f"sort: one of {', '.join(HOST_SORTS)}")
    order = query.get("order") or "asc"
    if order not in ("asc", "desc"):
        raise web.HTTPBadRequest(reason="order: asc or desc")
    return (sort, order == "desc", query_integer(request, "offset", 0, 0, 10**9),
            query_integer(request, "limit", default_limit, 1, ceiling))


def query_integer(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    """A whole-number query field within [low, high], `default` when absent."""
    text = request.query.get(name, str(default))
    if not text.isdigit() or not low <= int(text) <= high:
        raise web.HTTPBadRequest(reason=f"{name}: expected an integer from {low} to {high}")
    return int(text)


HOSTS_CSV_HEADER = ("id", "unit", "ip", "mac", "sensor", "hits", "indicators", "first_seen",
                    "last_seen", "last_hit", "status", "handled_at", "handled_by")


def hosts_csv(request: web.Request, hosts: list[Host]) -> web.Response:
    """The computer list as a CSV download (UTF-8 with a BOM, as spreadsheets expect;
    times as the page shows them)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HOSTS_CSV_HEADER)
    for h in hosts:
        writer.writerow([spreadsheet_cell(c) for c in (
            h.id, h.unit, h.ip, h.mac or "", h.sensor, h.hits, h.indicators,
            page_time(request, h.first_seen), page_time(request, h.last_seen),
            page_time(request, h.last_hit), h.status, page_time(request, h.handled_at),
            h.handled_by or "")])
    return web.Response(body=out.getvalue().encode("utf-8-sig"), headers={
        "Content-Type": "text/csv; charset=utf-8",
        "Content-Disposition": "attachment; filename=madoc-hosts.csv"})


async def read_evidence(request: web.Request, identity: Identity) -> HostEvidence | None:
    """The evidence on the request's host, or None when it is not in the account's scope."""
    store = request.app[STORE]
    host = await in_db(request, store.host, host_id_of(request), identity.scope)
    if host is None:
        return None
    rows = await in_db(request, store.host_evidence, host)
    return host_evidence(host, rows, store.quiet_seconds)


def report_query(request: web.Request) -> tuple[Period, str | None, str | None]:
    """The period and scope a report request names (as the command line's options)."""
    query = request.query
    try:
        period = period_from(query.get("week") or None, query.get("from") or None,
                             query.get("to") or None,
                             datetime.now(request.app[CONFIG].tz).date())
    except ReportError as err:
        raise web.HTTPBadRequest(reason=str(err)) from None
    return period, query.get("unit") or None, query.get("group") or None


async def report_response(request: web.Request, fmt: str, lang: str,
                          scope: Scope) -> web.Response:
    """A rendered report of the account's scope; a download (Content-Disposition)
    unless JSON."""
    if fmt not in REPORT_FORMATS:
        raise web.HTTPBadRequest(reason=f"format: one of {', '.join(REPORT_FORMATS)}")
    if lang not in LANGS:
        raise web.HTTPBadRequest(reason=f"lang: one of {', '.join(LANGS)}")
    period, unit, group = report_query(request)
    try:
        report = await in_db(request, campaign_report, request.app[STORE], period, unit, group,
                             scope, request.query.get("org") or None)
    except ReportError as err:
        raise web.HTTPBadRequest(reason=str(err)) from None
    body = render(report, fmt, lang, request.query.get("organisation", ""))
    headers = {}
    if fmt != "json":
        name = quote(report_file_name(report, fmt))
        headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{name}"
    response = web.Response(body=body, headers=headers)
    response.headers["Content-Type"] = MEDIA_TYPES[fmt]
    return response

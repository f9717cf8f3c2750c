"""What the API and the staff's page share: the application's keys, JSON answers,
the database's thread pool, times in the collector's zone, and a report as a response."""

from __future__ import annotations

import asyncio
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
from sensor.collector.forms import FORMATS as REPORT_FORMATS
from sensor.collector.forms import LANGS, MEDIA_TYPES, render, report_file_name
from sensor.collector.metrics import CollectorMetrics
from sensor.collector.report import Period, ReportError, campaign_report, period_from
from sensor.collector.store import Store

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


async def report_response(request: web.Request, fmt: str, lang: str) -> web.Response:
    """A rendered report; a download (Content-Disposition) unless JSON."""
    if fmt not in REPORT_FORMATS:
        raise web.HTTPBadRequest(reason=f"format: one of {', '.join(REPORT_FORMATS)}")
    if lang not in LANGS:
        raise web.HTTPBadRequest(reason=f"lang: one of {', '.join(LANGS)}")
    period, unit, group = report_query(request)
    try:
        report = await in_db(request, campaign_report, request.app[STORE], period, unit, group)
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

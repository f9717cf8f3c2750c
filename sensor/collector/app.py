"""The collector's HTTP API (aiohttp): authentication, validation, routes.

Database calls run in a small thread pool (one thread for SQLite, whose
writers queue anyway; several for PostgreSQL) so a slow query never stalls
the event loop that parses other sensors' requests. Every answer, errors
included, is JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import ssl
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import orjson
from aiohttp import web

from sensor.collector.api_schema import Invalid, openapi, validate_batch
from sensor.collector.config import CollectorConfig, ConfigError
from sensor.collector.forms import FORMATS as REPORT_FORMATS
from sensor.collector.forms import LANGS, MEDIA_TYPES, render, report_file_name
from sensor.collector.metrics import CollectorMetrics, metrics_app
from sensor.collector.report import Period, ReportError, campaign_report, period_from
from sensor.collector.store import STATUSES, Host, Store
from sensor.sdnotify import Notifier

log = logging.getLogger("madoc.collector")
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


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def _error(status: int, message: str) -> web.Response:
    return _json({"error": message}, status)


async def in_db(request: web.Request, function: Callable[..., T], *args: Any) -> T:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(request.app[EXECUTOR], partial(function, *args))


@web.middleware
async def errors_as_json(request: web.Request,
                         handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                         ) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPRequestEntityTooLarge:
        return _error(413, f"body over {request.app[CONFIG].max_body_bytes} bytes "
                           f"(max_body_bytes; after decompression)")
    except web.HTTPException as err:
        if err.status < 400:
            raise
        return _error(err.status, err.reason)


def is_page(path: str) -> bool:
    """Paths the web page serves (cookie login) rather than the API (bearer tokens)."""
    return path == "/" or path == UI or path.startswith(f"{UI}/")


@web.middleware
async def bearer_auth(request: web.Request,
                      handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                      ) -> web.StreamResponse:
    if request.path in OPEN_PATHS or is_page(request.path):
        return await handler(request)       # the web page checks its login cookie itself
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return _error(401, "missing Authorization: Bearer TOKEN")
    identity = await in_db(request, request.app[STORE].authenticate, token.strip())
    if identity is None:
        return _error(401, "unknown or revoked token")
    request["identity"] = identity
    return await handler(request)


def _require_admin(request: web.Request) -> str:
    kind, name, _unit = request["identity"]
    if kind != "admin":
        raise web.HTTPForbidden(reason="this endpoint needs an admin token")
    return name


def iso_time(request: web.Request, epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, request.app[CONFIG].tz).isoformat(timespec="seconds")


def _host_json(request: web.Request, host: Host) -> dict[str, Any]:
    return {"id": host.id, "unit": host.unit, "sensor": host.sensor, "ip": host.ip,
            "mac": host.mac, "first_seen": iso_time(request, host.first_seen),
            "last_seen": iso_time(request, host.last_seen), "hits": host.hits,
            "indicators": host.indicators, "status": host.status,
            "handled_at": iso_time(request, host.handled_at), "handled_by": host.handled_by,
            "last_hit": iso_time(request, host.last_hit)}


def _since(request: web.Request) -> float | None:
    text = request.query.get("since")
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise web.HTTPBadRequest(reason=f"since: not an ISO 8601 date or time: {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=request.app[CONFIG].tz)
    return moment.timestamp()


def _limit(request: web.Request, default: int, ceiling: int) -> int:
    text = request.query.get("limit", str(default))
    if not text.isdigit() or not 1 <= int(text) <= ceiling:
        raise web.HTTPBadRequest(reason=f"limit: expected an integer from 1 to {ceiling}")
    return int(text)


def host_id_of(request: web.Request) -> int:
    text = request.match_info["id"]
    if not text.isdigit() or len(text) > 18:
        raise web.HTTPBadRequest(reason="host id: expected an integer")
    return int(text)


class GroupCommit:
    """Batches that arrive while the database is busy are stored together, in one
    transaction, when it is free: on SQLite each commit is an fsync, and one fsync
    for several batches is what lets a single writer keep up with many sensors.
    Each request still gets its own answer (stored or duplicate). If a group
    fails, its batches are stored one by one, so one bad batch fails alone.
    PostgreSQL commits in parallel threads instead (`parallel`): a transaction over
    several batches would take row locks in an order another collector might cross.
    """

    def __init__(self, store: Store, executor: ThreadPoolExecutor, parallel: bool) -> None:
        self.store, self.executor, self.parallel = store, executor, parallel
        self.pending: list[tuple[dict, asyncio.Future]] = []
        self._flusher: asyncio.Task | None = None     # held: the loop keeps only weak refs

    async def submit(self, doc: dict) -> bool:
        loop = asyncio.get_running_loop()
        if self.parallel:
            return await loop.run_in_executor(self.executor, self.store.ingest, doc,
                                              time.time())
        answer = loop.create_future()
        self.pending.append((doc, answer))
        if self._flusher is None or self._flusher.done():
            self._flusher = loop.create_task(self._flush())
        return await answer

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        while self.pending:     # no await between this test and the task's end
            group, self.pending = self.pending, []
            try:
                results = await loop.run_in_executor(
                    self.executor, self.store.ingest_many, [doc for doc, _ in group],
                    time.time())
            except Exception:       # noqa: BLE001 - retried one by one below
                await self._one_by_one(group)
                continue
            for (_, answer), stored in zip(group, results, strict=True):
                if not answer.done():       # its request may have been cancelled
                    answer.set_result(stored)

    async def _one_by_one(self, group: list[tuple[dict, asyncio.Future]]) -> None:
        loop = asyncio.get_running_loop()
        for doc, answer in group:
            try:
                stored = await loop.run_in_executor(self.executor, self.store.ingest, doc,
                                                    time.time())
            except Exception as err:    # noqa: BLE001 - the request answers 500
                if not answer.done():
                    answer.set_exception(err)
            else:
                if not answer.done():
                    answer.set_result(stored)


INGEST = web.AppKey("ingest", GroupCommit)


async def post_events(request: web.Request) -> web.Response:
    started = time.perf_counter()
    kind, name, unit = request["identity"]
    if kind != "sensor":
        return _error(403, "only a sensor token may post events")
    body = await request.read()
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as err:
        return _error(400, f"body is not JSON: {err}")
    try:
        validate_batch(doc)
    except Invalid as err:
        return _error(400, str(err))
    if doc["sensor"] != name:
        return _error(403, f"this token belongs to sensor {name!r}, not {doc['sensor']!r}")
    stored = await request.app[INGEST].submit(doc)
    request.app[METRICS].batch(unit, stored, len(doc["alerts"]),
                               time.perf_counter() - started)
    return _json({"stored": True, "duplicate": not stored, "sequence": doc["sequence"]})


async def get_identity(request: web.Request) -> web.Response:
    kind, name, unit = request["identity"]
    return _json({"kind": kind, "name": name, "unit": unit})


async def get_sensors(request: web.Request) -> web.Response:
    _require_admin(request)
    now = time.time()
    sensors = await in_db(request, request.app[STORE].sensors)
    for sensor in sensors:
        last = sensor["last_seen"]
        sensor["silent_seconds"] = None if last is None else round(now - last, 1)
        sensor["created"] = iso_time(request, sensor["created"])
        sensor["last_seen"] = iso_time(request, last)
    return _json({"sensors": sensors})


async def get_hosts(request: web.Request) -> web.Response:
    _require_admin(request)
    status = request.query.get("status")
    if status is not None and status not in STATUSES:
        return _error(400, f"status: expected one of {', '.join(STATUSES)}")
    hosts = await in_db(request, partial(request.app[STORE].hosts,
                                       unit=request.query.get("unit"), since=_since(request),
                                       status=status, limit=_limit(request, 1000, 100_000)))
    return _json({"hosts": [_host_json(request, host) for host in hosts]})


async def get_host(request: web.Request) -> web.Response:
    _require_admin(request)
    store = request.app[STORE]
    host = await in_db(request, store.host, host_id_of(request))
    if host is None:
        return _error(404, "no such host")
    detail = await in_db(request, store.host_detail, host)
    for alert in detail["recent_alerts"]:
        alert["ts"] = iso_time(request, alert["ts"])
    return _json(_host_json(request, host) | detail)


async def post_handled(request: web.Request) -> web.Response:
    admin = _require_admin(request)
    store = request.app[STORE]
    host_id = host_id_of(request)
    if not await in_db(request, store.mark_handled, host_id, admin, time.time()):
        return _error(404, "no such host")
    host = await in_db(request, store.host, host_id)
    return _json(_host_json(request, host))


async def get_top_indicators(request: web.Request) -> web.Response:
    _require_admin(request)
    since = _since(request)
    since_day = None if since is None else datetime.fromtimestamp(
        since, request.app[CONFIG].tz).date().isoformat()
    rows = await in_db(request, partial(request.app[STORE].top_indicators,
                                      unit=request.query.get("unit"), since_day=since_day,
                                      limit=_limit(request, 20, 1000)))
    return _json({"indicators": rows})


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


async def get_report(request: web.Request) -> web.Response:
    _require_admin(request)
    return await report_response(request, request.query.get("format", "json"),
                                 request.query.get("lang", "vi"))


async def get_healthz(request: web.Request) -> web.Response:
    try:
        await in_db(request, request.app[STORE].ping)
    except Exception as err:    # any database failure makes the collector unhealthy
        return _error(503, f"database: {err}")
    return _json({"status": "ok"})


async def get_openapi(request: web.Request) -> web.Response:
    return _json(openapi())


def build_app(config: CollectorConfig, store: Store) -> web.Application:
    metrics = CollectorMetrics()
    app = web.Application(client_max_size=config.max_body_bytes,
                          middlewares=[metrics.count_requests, errors_as_json, bearer_auth])
    app[METRICS] = metrics
    app[CONFIG] = config
    app[STORE] = store
    app[EXECUTOR] = ThreadPoolExecutor(max_workers=4 if store.postgres else 1,
                                       thread_name_prefix="madoc-db")
    app[INGEST] = GroupCommit(store, app[EXECUTOR], parallel=store.postgres)
    app.router.add_post(f"{API}/events", post_events)
    app.router.add_get(f"{API}/identity", get_identity)
    app.router.add_get(f"{API}/sensors", get_sensors)
    app.router.add_get(f"{API}/hosts", get_hosts)
    app.router.add_get(f"{API}/hosts/{{id}}", get_host)
    app.router.add_post(f"{API}/hosts/{{id}}/handled", post_handled)
    app.router.add_get(f"{API}/indicators/top", get_top_indicators)
    app.router.add_get(f"{API}/report", get_report)
    app.router.add_get(f"{API}/healthz", get_healthz)
    app.router.add_get(f"{API}/openapi.json", get_openapi)
    from sensor.collector.web import add_routes  # the page builds on this module
    add_routes(app)

    async def shutdown(app: web.Application) -> None:
        if METRICS_RUNNER in app:
            await app[METRICS_RUNNER].cleanup()
        app[EXECUTOR].shutdown(wait=True)
    if config.metrics_listen:
        metrics_tls = tls_context(config, metrics=True)     # a bad certificate stops it here
        if metrics_tls is not None:
            app[METRICS_TLS] = metrics_tls
        app.on_startup.append(_serve_metrics)
    app.on_cleanup.append(shutdown)
    return app


async def _serve_metrics(app: web.Application) -> None:
    """/metrics on its own address, in the API's event loop."""
    store, executor = app[STORE], app[EXECUTOR]

    async def figures() -> tuple[list, list]:
        loop = asyncio.get_running_loop()
        return (await loop.run_in_executor(executor, store.sensors),
                await loop.run_in_executor(executor, store.hosts_by_status))

    config = app[CONFIG]
    runner = web.AppRunner(metrics_app(app[METRICS], figures, config.metrics_credentials),
                           access_log=None)
    await runner.setup()
    host, port = config.metrics_host_port
    await web.TCPSite(runner, host, port, ssl_context=app.get(METRICS_TLS)).start()
    app[METRICS_RUNNER] = runner


def ensure_admin_token(store: Store, path: str) -> bool:
    """The token in `path` is an admin token; make one (mode 0600) if the file is
    missing. True when a new file was written."""
    file = Path(path)
    if file.exists():
        token = file.read_text(encoding="ascii").strip()
        if not token:
            raise ConfigError(f"admin_token_file {path} is empty")
        store.add_admin_token(f"file:{file.name}", time.time(), token)
        return False
    file.parent.mkdir(parents=True, exist_ok=True)
    token = store.add_admin_token(f"file:{file.name}", time.time())
    descriptor = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(token + "\n")
    return True


def tls_context(config: CollectorConfig, metrics: bool = False) -> ssl.SSLContext | None:
    """The API's (or with `metrics`, the /metrics address's) server context, or None."""
    cert, key = (config.metrics_cert, config.metrics_key) if metrics else (config.tls_cert,
                                                                           config.tls_key)
    if not cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as err:
        raise ConfigError(f"cannot load TLS certificate {cert} / key {key}: {err}") from err
    return context


def run(config: CollectorConfig) -> int:
    """Migrate the database, then serve until SIGTERM/SIGINT."""
    host, port = config.host_port
    context = tls_context(config)
    if context is None and not config.insecure and host not in ("127.0.0.1", "::1", "localhost"):
        raise ConfigError(f"{config.source}: refusing plain HTTP on {host}: sensors' tokens "
                          f"would cross the network in clear; configure tls: {{cert, key}} "
                          f"or set insecure: true")
    store = Store(config.database, config.tz, config.quiet_period_days)
    version = store.migrate()
    if config.admin_token_file and ensure_admin_token(store, config.admin_token_file):
        log.warning("wrote a new admin token to %s", config.admin_token_file)
    store.close()   # the migrating thread's connection; request threads open their own
    app = build_app(config, store)
    scheme = "https" if context else "http"
    log.warning("madoc-collector listening on %s://%s:%d (schema %d, %s)%s", scheme, host, port,
                version, config.database.split("@")[-1],
                f"; metrics on {'https' if config.metrics_cert else 'http'}://"
                f"{config.metrics_listen}/metrics"
                f"{' (basic auth)' if config.metrics_credentials else ''}"
                if config.metrics_listen else "")
    asyncio.run(_serve(app, host, port, context,
                       f"serving on {scheme}://{host}:{port}"))
    return 0


async def _serve(app: web.Application, host: str, port: int,
                 context: ssl.SSLContext | None, status: str) -> None:
    """Serve until SIGTERM/SIGINT; tell systemd once listening (Type=notify) and ping its
    watchdog from the event loop, so a stuck loop gets the service restarted."""
    notifier = Notifier()
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await web.TCPSite(runner, host, port, ssl_context=context).start()
        notifier.ready(status)
        while not stop.is_set():
            notifier.watchdog()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=notifier.watchdog_interval or None)
    finally:
        notifier.stopping()
        await runner.cleanup()

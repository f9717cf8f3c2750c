"""The collector's server (aiohttp): the API's routes (`api.py`) and the staff's page
(`web.py`) in one application, its /metrics address, TLS, and serving until stopped.

Database calls run in a small thread pool (one thread for SQLite, whose
writers queue anyway; several for PostgreSQL) so a slow query never stalls
the event loop that parses other sensors' requests. Every API answer, errors
included, is JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

from aiohttp import web

from sensor.collector import api
from sensor.collector import web as page
from sensor.collector.config import CollectorConfig, ConfigError
from sensor.collector.http import (
    CONFIG,
    EXECUTOR,
    METRICS,
    METRICS_RUNNER,
    METRICS_TLS,
    STORE,
    error_response,
)
from sensor.collector.metrics import CollectorMetrics, metrics_app
from sensor.collector.store import EVERYTHING, Store
from sensor.collector.upstream import Upstream
from sensor.support.paths import create_secret_file
from sensor.support.sdnotify import Notifier

log = logging.getLogger("madoc.collector")


@web.middleware
async def errors_as_json(request: web.Request,
                         handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                         ) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPRequestEntityTooLarge:
        return error_response(413, f"body over {request.app[CONFIG].max_body_bytes} bytes "
                                   f"(max_body_bytes; after decompression)")
    except web.HTTPException as err:
        if err.status < 400:
            raise
        return error_response(err.status, err.reason)


def build_app(config: CollectorConfig, store: Store) -> web.Application:
    metrics = CollectorMetrics()
    app = web.Application(client_max_size=config.max_body_bytes,
                          middlewares=[metrics.count_requests, errors_as_json,
                                       api.bearer_auth])
    app[METRICS] = metrics
    app[CONFIG] = config
    app[STORE] = store
    app[EXECUTOR] = ThreadPoolExecutor(max_workers=4 if store.postgres else 1,
                                       thread_name_prefix="madoc-db")
    api.add_routes(app)
    page.add_routes(app)

    async def shutdown(app: web.Application) -> None:
        if METRICS_RUNNER in app:
            await app[METRICS_RUNNER].cleanup()
        app[EXECUTOR].shutdown(wait=True)
    if config.upstream is not None:
        upstream = Upstream(config.upstream, store)         # a bad setting stops it here
        app.cleanup_ctx.append(partial(_report_upstream, upstream=upstream))
    if config.metrics_listen:
        metrics_tls = tls_context(config, metrics=True)     # a bad certificate stops it here
        if metrics_tls is not None:
            app[METRICS_TLS] = metrics_tls
        app.on_startup.append(_serve_metrics)
    app.on_cleanup.append(shutdown)
    return app


async def _report_upstream(app: web.Application, upstream: Upstream) -> AsyncIterator[None]:
    """Report to the level above every `interval_seconds` while serving: spool what
    changed (in the database's thread), then send until the spool is empty or the next
    round is due."""
    interval = upstream.settings.interval_seconds

    async def rounds() -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = time.monotonic()
            try:
                await loop.run_in_executor(app[EXECUTOR], upstream.spool_pending)
                await upstream.uplink.drain(started + interval)
            except Exception:       # a bad round is logged; the next one tries again
                log.exception("reporting upstream")
            await asyncio.sleep(max(1.0, started + interval - time.monotonic()))
    task = asyncio.get_running_loop().create_task(rounds())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _serve_metrics(app: web.Application) -> None:
    """/metrics on its own address, in the API's event loop."""
    store, executor = app[STORE], app[EXECUTOR]

    async def figures() -> tuple[list, list]:
        loop = asyncio.get_running_loop()
        return (await loop.run_in_executor(executor, store.sensors, EVERYTHING),
                await loop.run_in_executor(executor, store.hosts_by_status))

    config = app[CONFIG]
    runner = web.AppRunner(metrics_app(app[METRICS], figures, config.metrics_credentials),
                           access_log=None)
    await runner.setup()
    host, port = config.metrics_host_port
    await _listen(runner, host, port, app.get(METRICS_TLS), "metrics.listen", config.source)
    app[METRICS_RUNNER] = runner


async def _listen(runner: web.AppRunner, host: str, port: int, context: ssl.SSLContext | None,
                  key: str, source: str) -> None:
    """Serve `runner` on HOST:PORT; an address taken is one line saying which and why."""
    try:
        await web.TCPSite(runner, host, port, ssl_context=context).start()
    except OSError as err:
        raise ConfigError(f"{source}: {key}: cannot listen on {host}:{port} ({err.strerror}): "
                          f"another collector, or another program, holds it; give each "
                          f"collector its own address") from None


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
    create_secret_file(file, store.add_admin_token(f"file:{file.name}", time.time()))
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
    if context is None and not config.plain_http_allowed:
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
    metrics = (f"; metrics on {'https' if config.metrics_cert else 'http'}://"
               f"{config.metrics_listen}/metrics"
               f"{' (basic auth)' if config.metrics_credentials else ''}"
               if config.metrics_listen else "")
    asyncio.run(_serve(app, host, port, context, f"serving on {scheme}://{host}:{port}",
                       f"madoc-collector listening on {scheme}://{host}:{port} (schema "
                       f"{version}, {config.database.split('@')[-1]}){metrics}"))
    return 0


async def _serve(app: web.Application, host: str, port: int,
                 context: ssl.SSLContext | None, status: str, announce: str) -> None:
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
        await _listen(runner, host, port, context, "listen", app[CONFIG].source)
        log.warning("%s", announce)
        notifier.ready(status)
        while not stop.is_set():
            notifier.watchdog()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=notifier.watchdog_interval or None)
    finally:
        notifier.stopping()
        await runner.cleanup()

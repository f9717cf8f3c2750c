"""The collector's Prometheus metrics, on their own address (`metrics.listen`,
default 127.0.0.1:9571), apart from the API and its tokens.

Requests are counted by route (the route's pattern, never the host id in the
path), with the ingest time of every event batch in a histogram. Sensors'
silence and hosts by status per unit are read from the database at scrape
time (one query each, in the database thread), so they hold across several
collector processes sharing one PostgreSQL.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from sensor.support.basicauth import Credentials, aiohttp_guard

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class CollectorMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("madoc_collector_requests", "API requests, by route and status.",
                                ["endpoint", "method", "status"], registry=self.registry)
        self.ingest = Histogram("madoc_collector_ingest_seconds",
                                "Time to validate and store one event batch.",
                                buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10),
                                registry=self.registry)
        self.batches = Counter("madoc_collector_batches", "Event batches received, by result "
                               "(duplicate: already stored, answered without storing again).",
                               ["result"], registry=self.registry)
        self.alerts = Counter("madoc_collector_alerts_ingested", "Alerts stored, by the "
                              "sending sensor's unit.", ["unit"], registry=self.registry)
        self.silence = Gauge("madoc_collector_sensor_last_seen_seconds",
                             "Seconds since the sensor's last batch.", ["sensor", "unit"],
                             registry=self.registry)
        self.hosts = Gauge("madoc_collector_hosts", "Hosts known, by unit and status.",
                           ["unit", "status"], registry=self.registry)

    @web.middleware
    async def count_requests(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        resource = request.match_info.route.resource
        endpoint = resource.canonical if resource is not None else "(no route)"
        self.requests.labels(endpoint, request.method, str(response.status)).inc()
        return response

    def batch(self, unit: str, stored: bool, alerts: int, seconds: float) -> None:
        self.ingest.observe(seconds)
        self.batches.labels("stored" if stored else "duplicate").inc()
        if stored:
            self.alerts.labels(unit).inc(alerts)

    def refresh(self, sensors: list[dict[str, Any]], hosts: list[tuple[str, str, int]],
                now: float) -> None:
        self.silence.clear()
        for sensor in sensors:
            if sensor["last_seen"] is not None:
                self.silence.labels(sensor["id"], sensor["unit"]).set(now - sensor["last_seen"])
        self.hosts.clear()
        for unit, status, count in hosts:
            self.hosts.labels(unit, status).set(count)

    def exposition(self) -> web.Response:
        response = web.Response(body=generate_latest(self.registry))
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response


def metrics_app(metrics: CollectorMetrics,
                figures: Callable[[], Awaitable[tuple[list, list]]],
                credentials: Credentials | None = None) -> web.Application:
    """The /metrics application: `figures` reads sensors and hosts from the database;
    behind basic authentication when given credentials."""
    async def get_metrics(_request: web.Request) -> web.Response:
        sensors, hosts = await figures()
        metrics.refresh(sensors, hosts, time.time())
        return metrics.exposition()

    app = web.Application(middlewares=[aiohttp_guard(credentials)] if credentials else [])
    app.router.add_get("/metrics", get_metrics)
    return app

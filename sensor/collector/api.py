"""The API's routes (`/api/v1/`, JSON, `Authorization: Bearer TOKEN`): sensors post
batches; staff (admin tokens) read sensors, hosts, indicators and the report of their
scope (one unit, one block, or the whole province), and mark their hosts handled."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from functools import partial
from typing import Any

import orjson
from aiohttp import web

from sensor.collector.api_schema import Invalid, openapi, validate_batch, validate_upstream
from sensor.collector.evidence import HostEvidence
from sensor.collector.http import (
    API,
    CONFIG,
    EXECUTOR,
    MAX_NOTE,
    METRICS,
    OPEN_PATHS,
    STORE,
    error_response,
    host_filter,
    host_id_of,
    host_page_query,
    hosts_csv,
    in_db,
    is_page,
    iso_time,
    json_response,
    query_integer,
    read_evidence,
    report_response,
)
from sensor.collector.ingest import GroupCommit
from sensor.collector.store import Host, Identity

INGEST = web.AppKey("ingest", GroupCommit)


@web.middleware
async def bearer_auth(request: web.Request,
                      handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                      ) -> web.StreamResponse:
    if request.path in OPEN_PATHS or is_page(request.path):
        return await handler(request)       # the web page checks its login cookie itself
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return error_response(401, "missing Authorization: Bearer TOKEN")
    identity = await in_db(request, request.app[STORE].authenticate, token.strip())
    if identity is None:
        return error_response(401, "unknown or revoked token")
    request["identity"] = identity
    return await handler(request)


def _require_admin(request: web.Request) -> Identity:
    identity: Identity = request["identity"]
    if identity.kind != "admin":
        raise web.HTTPForbidden(reason="this endpoint needs an admin token")
    return identity


def host_json(request: web.Request, host: Host) -> dict[str, Any]:
    return {"id": host.id, "unit": host.unit, "sensor": host.sensor, "ip": host.ip,
            "mac": host.mac, "first_seen": iso_time(request, host.first_seen),
            "last_seen": iso_time(request, host.last_seen), "hits": host.hits,
            "indicators": host.indicators, "status": host.status,
            "handled_at": iso_time(request, host.handled_at), "handled_by": host.handled_by,
            "last_hit": iso_time(request, host.last_hit)}


def evidence_json(request: web.Request, evidence: HostEvidence) -> dict[str, Any]:
    def when(epoch: float | None) -> str | None:
        return iso_time(request, epoch)
    return host_json(request, evidence.host) | {
        "evidence": [{"indicator": i.indicator, "indicator_type": i.indicator_type,
                        "hits": i.hits, "first": when(i.first), "last": when(i.last),
                      "matches": i.matches, "hits_by_day": i.hits_by_day}
                     for i in evidence.indicators],
        "hits_by_day": [{"day": day, "indicator": i.indicator,
                         "indicator_type": i.indicator_type, "hits": hits}
                        for i in evidence.indicators for day, hits in i.hits_by_day.items()],
        "addresses": [{"ip": a.ip, "mac": a.mac, "sensor": a.sensor,
                       "first_seen": when(a.first_seen), "last_seen": when(a.last_seen)}
                      for a in evidence.addresses],
        "timeline": [{"ts": when(c.ts), "status": c.status, "why": c.why, "by": c.by}
                     for c in evidence.timeline],
        "actions": [{"ts": when(a.ts), "action": a.action, "by": a.by, "note": a.note}
                    for a in evidence.actions],
        "recent_alerts": [alert | {"ts": when(alert["ts"])} for alert in evidence.alerts]}


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


async def _posted_batch(request: web.Request, kind: str, field: str,
                        validate: Callable[[Any], None], refusal: str) -> tuple[Identity, dict]:
    """The token's owner and its posted batch: parsed, validated, and naming that owner
    in `field` (a sensor may not post for another, nor an organisation)."""
    identity: Identity = request["identity"]
    if identity.kind != kind:
        raise web.HTTPForbidden(reason=refusal)
    try:
        doc = orjson.loads(await request.read())
    except orjson.JSONDecodeError as err:
        raise web.HTTPBadRequest(reason=f"body is not JSON: {err}") from None
    try:
        validate(doc)
    except Invalid as err:
        raise web.HTTPBadRequest(reason=str(err)) from None
    if doc[field] != identity.name:
        raise web.HTTPForbidden(reason=f"this token belongs to {kind} {identity.name!r}, "
                                       f"not {doc[field]!r}")
    return identity, doc


async def post_events(request: web.Request) -> web.Response:
    started = time.perf_counter()
    identity, doc = await _posted_batch(request, "sensor", "sensor", validate_batch,
                                        "only a sensor token may post events")
    stored = await request.app[INGEST].submit(doc)
    request.app[METRICS].batch(identity.unit, stored, len(doc["alerts"]),
                               time.perf_counter() - started)
    return json_response({"stored": True, "duplicate": not stored, "sequence": doc["sequence"]})


async def post_upstream(request: web.Request) -> web.Response:
    """A batch from an organisation below (a province reporting to the nation)."""
    identity, doc = await _posted_batch(
        request, "org", "org", validate_upstream, "only an organisation's token may post "
        "upstream batches (madoc-collector tokens add --org NAME)")
    stored = await in_db(request, request.app[STORE].ingest_upstream, identity.name, doc,
                         time.time())
    return json_response({"stored": True, "duplicate": not stored, "sequence": doc["sequence"]})


async def get_identity(request: web.Request) -> web.Response:
    identity: Identity = request["identity"]
    return json_response({"kind": identity.kind, "name": identity.name, "unit": identity.unit,
                          "group": identity.group})


async def get_sensors(request: web.Request) -> web.Response:
    scope = _require_admin(request).scope
    now = time.time()
    sensors = await in_db(request, request.app[STORE].sensors, scope)
    for sensor in sensors:
        last = sensor["last_seen"]
        sensor["silent_seconds"] = None if last is None else round(now - last, 1)
        sensor["created"] = iso_time(request, sensor["created"])
        sensor["last_seen"] = iso_time(request, last)
    return json_response({"sensors": sensors})


async def get_hosts(request: web.Request) -> web.Response:
    scope = _require_admin(request).scope
    store = request.app[STORE]
    wanted = dataclasses.replace(host_filter(request), since=_since(request))
    page = host_page_query(request, default_limit=1000, ceiling=100_000)
    hosts = await in_db(request, partial(store.hosts, scope, wanted, *page))
    if request.query.get("format") == "csv":
        return hosts_csv(request, hosts)
    total = await in_db(request, store.count_hosts, scope, wanted)
    return json_response({"hosts": [host_json(request, host) for host in hosts],
                          "total": total})


async def get_host(request: web.Request) -> web.Response:
    evidence = await read_evidence(request, _require_admin(request))
    if evidence is None:
        return error_response(404, "no such host")
    return json_response(evidence_json(request, evidence))


async def post_handled(request: web.Request) -> web.Response:
    identity = _require_admin(request)
    note = ""
    if request.can_read_body:
        try:
            doc = orjson.loads(await request.read() or b"{}")
        except orjson.JSONDecodeError as err:
            return error_response(400, f"body is not JSON: {err}")
        note = doc.get("note", "") if isinstance(doc, dict) else None
        if not isinstance(note, str) or len(note) > MAX_NOTE:
            return error_response(400, f"note: expected text of at most {MAX_NOTE} "
                                       f"characters")
    store = request.app[STORE]
    host_id = host_id_of(request)
    if not await in_db(request, store.mark_handled, host_id, identity.name, time.time(),
                       identity.scope, note.strip()):
        return error_response(404, "no such host")
    host = await in_db(request, store.host, host_id, identity.scope)
    return json_response(host_json(request, host))


async def get_top_indicators(request: web.Request) -> web.Response:
    scope = _require_admin(request).scope.narrow(request.query.get("unit") or None,
                                                  request.query.get("group") or None)
    since = _since(request)
    since_day = None if since is None else datetime.fromtimestamp(
        since, request.app[CONFIG].tz).date().isoformat()
    limit = query_integer(request, "limit", 20, 1, 1000)
    rows = await in_db(request, partial(request.app[STORE].top_indicators, scope,
                                        since_day=since_day, limit=limit))
    return json_response({"indicators": rows})


async def get_report(request: web.Request) -> web.Response:
    scope = _require_admin(request).scope
    return await report_response(request, request.query.get("format", "json"),
                                 request.query.get("lang", "vi"), scope)


async def get_healthz(request: web.Request) -> web.Response:
    try:
        await in_db(request, request.app[STORE].ping)
    except Exception as err:    # any database failure makes the collector unhealthy
        return error_response(503, f"database: {err}")
    return json_response({"status": "ok"})


async def get_openapi(request: web.Request) -> web.Response:
    return json_response(openapi())


def add_routes(app: web.Application) -> None:
    """The API's routes, and the group commit that stores batches (needs STORE, EXECUTOR)."""
    store = app[STORE]
    app[INGEST] = GroupCommit(store, app[EXECUTOR], parallel=store.postgres)
    app.router.add_post(f"{API}/events", post_events)
    app.router.add_post(f"{API}/upstream", post_upstream)
    app.router.add_get(f"{API}/identity", get_identity)
    app.router.add_get(f"{API}/sensors", get_sensors)
    app.router.add_get(f"{API}/hosts", get_hosts)
    app.router.add_get(f"{API}/hosts/{{id}}", get_host)
    app.router.add_post(f"{API}/hosts/{{id}}/handled", post_handled)
    app.router.add_get(f"{API}/indicators/top", get_top_indicators)
    app.router.add_get(f"{API}/report", get_report)
    app.router.add_get(f"{API}/healthz", get_healthz)
    app.router.add_get(f"{API}/openapi.json", get_openapi)

"""The API's shapes, written once: request validation and the OpenAPI document.

`validate_batch` checks a posted batch against the same field lists that
`openapi()` publishes, so the document cannot drift from what the server
accepts; a test checks the server's answers against the document's response
schemas. Validation is hand-rolled over these lists because a generic JSON
Schema validator costs tens of microseconds an alert, and the collector takes
tens of thousands of alerts a second.
"""

from __future__ import annotations

import ipaddress
from datetime import date
from functools import lru_cache
from typing import Any

from sensor import __version__
from sensor.collector.store import HOST_SORTS

MAX_TEXT = 1024         # an escaped 255-byte DNS name fits
MAX_SOURCES = 64
MAX_ROWS = {"alerts": 20_000, "counts": 100_000, "hosts_seen": 100_000,
            "encrypted_dns": 100_000}

# (field, type, required); types: number, integer, string, ip, mac?, boolean, strings, object
ALERT = (("ts", "number", True), ("host_ip", "ip", True), ("host_mac", "mac?", True),
         ("indicator", "string", True), ("indicator_type", "string", True),
         ("match", "string", True), ("seen", "string", True), ("outbound", "boolean", True),
         ("sources", "strings", True), ("campaign", "string", True),
         ("severity", "integer", True), ("proto", "integer", True), ("src_ip", "ip", True),
         ("src_port", "integer", True), ("dest_ip", "ip", True), ("dest_port", "integer", True),
         ("resolved_from", "string", False))
COUNT = (("host_ip", "ip", True), ("host_mac", "mac?", True), ("hour", "integer", True),
         ("indicator", "string", True), ("indicator_type", "string", True),
         ("hits", "integer", True), ("first", "number", True), ("last", "number", True),
         ("matches", "strings", False))
SEEN = (("host_ip", "ip", True), ("host_mac", "mac?", True), ("hour", "integer", True),
        ("first", "number", True), ("last", "number", True))
ENCRYPTED_DNS = (("host_ip", "ip", True), ("host_mac", "mac?", True), ("hour", "integer", True),
                 ("kind", "string", True), ("server", "string", True),
                 ("flows", "integer", True), ("first", "number", True), ("last", "number", True))
ENVELOPE = (("sensor", "string", True), ("stream", "string", True),
            ("sequence", "integer", True), ("alerts", ALERT, True), ("counts", COUNT, True),
            ("hosts_seen", SEEN, True), ("encrypted_dns", ENCRYPTED_DNS, False),
            ("dropped_alerts", "integer", True))
_HEX = frozenset("0123456789abcdef")


class Invalid(ValueError):
    """A request body that does not fit the API; the message says where and why."""


def _is_mac(value: Any) -> bool:
    return value is None or (value.__class__ is str and len(value) == 17
                             and all(value[i] == ":" for i in range(2, 17, 3))
                             and _HEX.issuperset(value.replace(":", "")))


# kind → (test, what was expected); tests are plain predicates, messages built on failure
_KINDS: dict[str, tuple[Any, str]] = {
    "string": (lambda v: v.__class__ is str and len(v) <= MAX_TEXT,
               f"a string of at most {MAX_TEXT} characters"),
    "integer": (lambda v: v.__class__ is int and -(1 << 63) <= v < (1 << 63), "an integer"),
    "number": (lambda v: v.__class__ is float or v.__class__ is int, "a number"),
    "boolean": (lambda v: v.__class__ is bool, "true or false"),
    "ip": (lambda v: v.__class__ is str and len(v) <= 45 and _is_ip(v),
           "an IPv4 or IPv6 address"),
    "mac?": (_is_mac, "null or a MAC address aa:bb:cc:dd:ee:ff (lower case)"),
    "strings": (lambda v: v.__class__ is list and len(v) <= MAX_SOURCES
                and all(s.__class__ is str and len(s) <= MAX_TEXT for s in v),
                f"a list of at most {MAX_SOURCES} strings"),
}


@lru_cache(maxsize=65536)     # the same hosts and servers recur batch after batch
def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _compile(fields: tuple) -> list[tuple[str, Any, bool, Any]]:
    """(name, test or nested fields, required, kind) per field, tests looked up once."""
    return [(name, kind if kind.__class__ is tuple else _KINDS[kind][0], required, kind)
            for name, kind, required in fields]


_MISSING = object()


def _check_object(doc: Any, fields: tuple, where: str) -> None:
    if doc.__class__ is not dict:
        raise Invalid(f"{where or 'body'}: expected an object")
    for name, test, required, kind in _COMPILED[id(fields)]:
        value = doc.get(name, _MISSING)
        if value is _MISSING:
            if required:
                raise Invalid(f"{where}{'.' if where else ''}{name}: missing")
            continue
        if test.__class__ is tuple:
            path = f"{where}{'.' if where else ''}{name}"
            if value.__class__ is not list or len(value) > MAX_ROWS[name]:
                raise Invalid(f"{path}: expected a list of at most {MAX_ROWS[name]} objects")
            for index, row in enumerate(value):
                try:
                    _check_object(row, test, "")
                except Invalid as err:      # where is spelled out only on failure
                    detail = str(err).removeprefix("body")
                    raise Invalid(f"{path}[{index}]{'' if detail[0] == ':' else '.'}{detail}"
                                  ) from None
        elif not test(value):
            raise Invalid(f"{where}{'.' if where else ''}{name}: expected {_KINDS[kind][1]}")


_COMPILED = {id(fields): _compile(fields)
             for fields in (ALERT, COUNT, SEEN, ENCRYPTED_DNS, ENVELOPE)}


def validate_batch(doc: Any) -> None:
    """Raise `Invalid` unless `doc` is a well-formed batch."""
    _check_object(doc, ENVELOPE, "")
    if doc["sequence"] < 1:
        raise Invalid("sequence: must be 1 or more")
    if doc["dropped_alerts"] < 0:
        raise Invalid("dropped_alerts: must be 0 or more")
    for index, count in enumerate(doc["counts"]):
        if count["hits"] < 1:
            raise Invalid(f"counts[{index}].hits: must be 1 or more")


# -- batches from an organisation below (sensor.collector.upstream) ------------------------
MAX_UPSTREAM_ROWS = 5_000_000
_TEXT = _KINDS["string"][0]


def _host_key(value: Any) -> bool:
    """A host's keyed hash: 32 lower-case hex digits."""
    return value.__class__ is str and len(value) == 32 and _HEX.issuperset(value)


def _count(value: Any) -> bool:
    return value.__class__ is int and 0 < value < (1 << 63)


def _status(value: Any) -> bool:
    return value in ("clean", "infected", "handled")


def _opt(test: Any) -> Any:
    return lambda v: v is None or test(v)

# row name → (field names, tests): each row is a JSON array of these fields
UPSTREAM_ROWS: dict[str, tuple[tuple[str, ...], tuple[Any, ...]]] = {
    "sensors": (("unit", "sensor"), (_TEXT, _TEXT)),
    "hosts": (("unit", "host"), (_TEXT, _host_key)),
    "hits": (("unit", "host", "indicator", "kind", "hits"),
             (_TEXT, _host_key, _TEXT, _TEXT, _count)),
    "statuses": (("unit", "host", "status", "ip", "mac"),
                 (_TEXT, _host_key, _status, _opt(_KINDS["ip"][0]), _opt(_is_mac))),
}
UPSTREAM_OBJECTS = {
    "directory": (("unit", "group", "code", "parent", "informed"),
                  (_TEXT, _TEXT, _opt(_TEXT), _opt(_TEXT), _KINDS["boolean"][0])),
    "sensors": (("id", "unit", "last_seen"), (_TEXT, _TEXT, _opt(_KINDS["number"][0]))),
}


def _check_rows(doc: dict, name: str, shape: tuple, objects: bool = False,
                key: str | None = None) -> None:
    rows = doc.get(name)
    if rows.__class__ is not list or len(rows) > MAX_UPSTREAM_ROWS:
        raise Invalid(f"{name}: expected a list of at most {MAX_UPSTREAM_ROWS} rows")
    fields, tests = shape
    for index, row in enumerate(rows):
        values = [row.get(f, _MISSING) for f in fields] if objects and row.__class__ is dict \
            else row
        if values.__class__ is not list or len(values) != len(fields):
            raise Invalid(f"{key or name}[{index}]: expected "
                          f"{'an object' if objects else 'an array'} of {', '.join(fields)}")
        for field, test, value in zip(fields, tests, values, strict=True):
            if value is _MISSING or not test(value):
                raise Invalid(f"{key or name}[{index}].{field}: not valid")


def validate_upstream(doc: Any) -> None:
    """Raise `Invalid` unless `doc` is a well-formed batch from an organisation below: a
    day's state (`kind: day`) or its directory and hosts' statuses (`kind: status`)."""
    if doc.__class__ is not dict:
        raise Invalid("body: expected an object")
    for name, test in (("org", _TEXT), ("stream", _TEXT), ("sequence", _count)):
        if not test(doc.get(name)):
            raise Invalid(f"{name}: missing or not valid")
    if doc.get("kind") == "day":
        day = doc.get("day")
        try:
            date.fromisoformat(day if day.__class__ is str and len(day) == 10 else "")
        except ValueError:
            raise Invalid("day: expected YYYY-MM-DD") from None
        for name in ("sensors", "hosts", "hits"):
            _check_rows(doc, name, UPSTREAM_ROWS[name])
    elif doc.get("kind") == "status":
        _check_rows(doc, "directory", UPSTREAM_OBJECTS["directory"], objects=True)
        _check_rows(doc, "sensors", UPSTREAM_OBJECTS["sensors"], objects=True)
        _check_rows(doc, "hosts", UPSTREAM_ROWS["statuses"], key="hosts")
    else:
        raise Invalid("kind: day or status")


# -- OpenAPI -------------------------------------------------------------------------------
_JSON_TYPES = {"string": {"type": "string", "maxLength": MAX_TEXT}, "integer": {"type": "integer"},
               "number": {"type": "number"}, "boolean": {"type": "boolean"},
               "ip": {"type": "string", "description": "IPv4 or IPv6 address"},
               "mac?": {"type": ["string", "null"], "pattern": "^[0-9a-f]{2}(:[0-9a-f]{2}){5}$"},
               "strings": {"type": "array", "items": {"type": "string"},
                           "maxItems": MAX_SOURCES}}


def _schema(fields: tuple, names: dict[int, str]) -> dict[str, Any]:
    properties = {}
    for name, kind, _ in fields:
        if kind.__class__ is tuple:
            properties[name] = {"type": "array", "maxItems": MAX_ROWS[name],
                                "items": {"$ref": f"#/components/schemas/{names[id(kind)]}"}}
        else:
            properties[name] = dict(_JSON_TYPES[kind])
    return {"type": "object", "properties": properties,
            "required": [name for name, _, required in fields if required]}


def _obj(required: list[str], **properties: Any) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": properties}


_TIME = {"type": "string", "format": "date-time"}
_TIME_OR_NULL = {"type": ["string", "null"], "format": "date-time"}
_STR, _INT, _NUM = {"type": "string"}, {"type": "integer"}, {"type": "number"}
_NULLABLE_STR = {"type": ["string", "null"]}
_STRS = {"type": "array", "items": _STR}
HOST = _obj(["id", "unit", "sensor", "ip", "mac", "first_seen", "last_seen", "hits",
             "indicators", "status"],
            id=_INT, unit=_STR, sensor=_STR, ip=_STR, mac=_NULLABLE_STR, first_seen=_TIME,
            last_seen=_TIME, hits=_INT, indicators=_INT,
            status={"type": "string", "enum": ["clean", "infected", "handled"]},
            handled_at=_TIME_OR_NULL, handled_by=_NULLABLE_STR, last_hit=_TIME_OR_NULL)
SENSOR = _obj(["id", "unit", "created", "last_seen", "batches", "alerts", "dropped_alerts",
               "silent_seconds"],
              id=_STR, unit=_STR, created=_TIME, last_seen=_TIME_OR_NULL, batches=_INT,
              alerts=_INT, dropped_alerts=_INT, silent_seconds={"type": ["number", "null"]})
INDICATOR = _obj(["indicator", "indicator_type", "hits", "hosts"], indicator=_STR,
                 indicator_type=_STR, hits=_INT, hosts=_INT,
                 matches=_STRS)
HOST_DETAIL = {"allOf": [{"$ref": "#/components/schemas/Host"}, _obj(
    ["evidence", "hits_by_day", "addresses", "timeline", "actions", "recent_alerts"],
    evidence={"type": "array", "items": _obj(
        ["indicator", "indicator_type", "hits", "first", "last", "matches", "hits_by_day"],
        indicator=_STR, indicator_type=_STR, hits=_INT, first=_TIME_OR_NULL,
        last=_TIME_OR_NULL, matches=_STRS,
        hits_by_day={"type": "object", "additionalProperties": _INT})},
    hits_by_day={"type": "array", "items": _obj(["day", "indicator", "indicator_type", "hits"],
                                                day={"type": "string", "format": "date"},
                                                indicator=_STR, indicator_type=_STR,
                                                hits=_INT)},
    addresses={"type": "array", "items": _obj(
        ["ip", "mac", "sensor", "first_seen", "last_seen"], ip=_STR, mac=_NULLABLE_STR,
        sensor=_STR, first_seen=_TIME, last_seen=_TIME)},
    timeline={"type": "array", "items": _obj(
        ["ts", "status", "why", "by"], ts=_TIME,
        status={"type": "string", "enum": ["infected", "handled"]},
        why={"type": "string", "enum": ["first_hit", "hit_after_handled", "marked",
                                        "quiet_period"]}, by=_NULLABLE_STR)},
    actions={"type": "array", "items": _obj(["ts", "action", "by", "note"], ts=_TIME,
                                            action=_STR, by=_STR, note=_STR)},
    recent_alerts={"type": "array", "items": _obj(["ts", "sensor", "indicator", "match"],
                                                  ts=_TIME, sensor=_STR, indicator=_STR,
                                                  match=_STR)})]}
ERROR = _obj(["error"], error=_STR)
_DAY = {"type": "string", "format": "date"}
_BOOL = {"type": "boolean"}
_COUNTS = _obj(["informed", "deployed"], informed=_INT, deployed=_INT)
_FORM2_NUMBERS = ("computers_covered", "computers_found", "computers_handled")
_SERIES = {"type": "array", "items": _INT}
REPORT = _obj(
    ["period", "scope", "form1", "form2", "totals", "silent_sensors", "daily", "assessment"],
    period=_obj(["from", "to", "week"], **{"from": _DAY, "to": _DAY, "week": _NULLABLE_STR}),
    scope=_obj(["unit", "group", "org"], unit=_NULLABLE_STR, group=_NULLABLE_STR,
               org=_NULLABLE_STR),
    form1=_obj(["informed", "deployed", "by_group"], informed=_INT, deployed=_INT,
               by_group={"type": "object", "additionalProperties": _COUNTS}),
    form2={"type": "array", "items": _obj(
        ["unit", "group", "informed", "deployed", "parent", "with_subunits", "department",
         "sensors", "sensors_reporting", *_FORM2_NUMBERS, "computers_encrypted_dns",
         "top_indicators", "hosts_still_infected", "hosts_encrypted_dns"],
        unit=_STR, group=_STR, informed=_BOOL, deployed=_BOOL, parent=_NULLABLE_STR,
        department=_NULLABLE_STR,
        with_subunits={"anyOf": [{"type": "null"}, _obj(
            ["sensors", "sensors_reporting", *_FORM2_NUMBERS], sensors=_INT,
            sensors_reporting=_INT, **dict.fromkeys(_FORM2_NUMBERS, _INT))]},
        sensors=_INT,
        sensors_reporting=_INT, **dict.fromkeys(_FORM2_NUMBERS, _INT),
        computers_encrypted_dns=_INT,
        top_indicators={"type": "array", "items": INDICATOR},
        hosts_still_infected={"type": "array", "items": _obj(
            ["id", "ip", "mac", "sensor", "last_hit", "hits"], id=_INT, ip=_STR,
            mac=_NULLABLE_STR, sensor=_STR, last_hit=_TIME_OR_NULL, hits=_INT)},
        hosts_encrypted_dns={"type": "array", "items": _obj(
            ["id", "ip", "mac", "sensor", "kinds", "servers", "flows"], id=_INT, ip=_STR,
            mac=_NULLABLE_STR, sensor=_STR, kinds={"type": "array", "items": _STR},
            servers={"type": "array", "items": _STR}, flows=_INT)},
        handled_log={"type": "array", "items": _obj(
            ["id", "ip", "mac", "at", "by", "note"], id=_INT, ip=_STR, mac=_NULLABLE_STR,
            at=_TIME, by=_STR, note=_STR)})},
    totals=_obj(list(_FORM2_NUMBERS), **dict.fromkeys(_FORM2_NUMBERS, _INT),
                computers_encrypted_dns=_INT),
    silent_sensors={"type": "array", "items": _obj(["id", "unit", "last_seen"], id=_STR,
                                                   unit=_STR, last_seen=_TIME_OR_NULL)},
    daily={"anyOf": [{"type": "null"}, _obj(
        ["days", "hits", "found", "handled", "still_infected", "units_deployed"],
        days={"type": "array", "items": _DAY}, hits=_SERIES, found=_SERIES, handled=_SERIES,
        still_infected=_SERIES, units_deployed=_SERIES)]},
    assessment=_STR,
    orgs={"type": "array", "items": _obj(
        ["org", "informed", "deployed", *_FORM2_NUMBERS, "silent"], org=_STR, informed=_INT,
        deployed=_INT, **dict.fromkeys(_FORM2_NUMBERS, _INT), silent=_BOOL)},
    org_indicators={"type": "array", "items": _obj(
        ["indicator", "indicator_type", "orgs", "computers", "hits"], indicator=_STR,
        indicator_type=_STR, orgs=_INT, computers=_INT, hits=_INT)})


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _answer(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERRORS = {"400": _answer(_ref("Error"), "malformed request: the message says which field"),
           "401": _answer(_ref("Error"), "no token, or a wrong or revoked one"),
           "403": _answer(_ref("Error"), "the token may not do this")}


def _op(summary: str, answer: dict[str, Any], admin: bool = True, **extra: Any) -> dict:
    op = {"summary": summary, "responses": {"200": answer, **_ERRORS},
          "security": [{"bearer": []}], **extra}
    if admin:
        op["description"] = "Needs an admin token."
    return op


def _query(name: str, description: str, schema: dict | None = None) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema or _STR}


def openapi() -> dict[str, Any]:
    parts = ((ENVELOPE, "Batch"), (ALERT, "Alert"), (COUNT, "HostCount"), (SEEN, "HostSeen"),
             (ENCRYPTED_DNS, "HostEncryptedDns"))
    names = {id(fields): name for fields, name in parts}
    schemas = {name: _schema(fields, names) for fields, name in parts}
    schemas |= {"Host": HOST, "HostDetail": HOST_DETAIL, "Sensor": SENSOR,
                "Indicator": INDICATOR, "Report": REPORT, "Error": ERROR}
    host_id = {"name": "id", "in": "path", "required": True, "schema": _INT}
    stored = _obj(["stored", "duplicate", "sequence"], stored={"type": "boolean"},
                  duplicate={"type": "boolean"}, sequence=_INT)
    post_events = _op(
        "Store a batch of alerts and per-host count deltas, once per (sensor, stream, sequence)",
        _answer(stored), admin=False,
        description="Needs the token of the batch's sensor (403 for another sensor's id). "
                    "The body may be gzip-compressed (Content-Encoding: gzip).",
        requestBody={"required": True,
                     "content": {"application/json": {"schema": _ref("Batch")}}})
    post_events["responses"]["413"] = _answer(_ref("Error"), "body over max_body_bytes")
    return {
        "openapi": "3.1.0",
        "info": {"title": "madoc collector", "version": __version__},
        "components": {"schemas": schemas,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "paths": {
            "/api/v1/events": {"post": post_events},
            "/api/v1/upstream": {"post": _op(
                "Store a batch from an organisation below, once per (org, stream, sequence)",
                _answer(stored), admin=False,
                description="Needs the organisation's token (tokens add --org NAME). A day "
                            "batch (kind: day) replaces what the organisation sent for that "
                            "day: the sensors that reported, the hosts active and their hits, "
                            "hosts named by a keyed hash; a status batch (kind: status) its "
                            "unit directory, sensors and hosts' statuses. The body may be "
                            "gzip-compressed.",
                requestBody={"required": True, "content": {"application/json": {
                    "schema": {"type": "object", "required": ["org", "stream", "sequence",
                                                              "kind"]}}}})},
            "/api/v1/identity": {"get": _op(
                "Whom the token belongs to (a sensor learns its id from its token)",
                _answer(_obj(["kind", "name", "unit", "group"],
                             kind={"type": "string", "enum": ["sensor", "admin", "org"]}, name=_STR,
                             unit=_NULLABLE_STR, group=_NULLABLE_STR)), admin=False,
                description="unit: a sensor's unit, or the one unit an admin token is limited "
                            "to; group: the block an admin token is limited to")},
            "/api/v1/sensors": {"get": _op("Registered sensors and when each last reported",
                                           _answer(_obj(["sensors"], sensors={
                                               "type": "array", "items": _ref("Sensor")})))},
            "/api/v1/hosts": {"get": _op(
                "Hosts of the token's scope, with hit totals and status; one page of the "
                "filtered, sorted list and the list's total",
                _answer(_obj(["hosts", "total"], hosts={"type": "array", "items": _ref("Host")},
                             total=_INT), "the page as JSON, or with format=csv the whole "
                                          "filtered list (up to limit) as a CSV download"),
                parameters=[_query("unit", "only this unit"),
                            _query("group", "only the units of this block"),
                            _query("sensor", "only hosts last seen by this sensor"),
                            _query("indicator", "only hosts that contacted this indicator"),
                            _query("search", "IP or MAC address, or indicator, containing "
                                             "this text"),
                            _query("since", "last seen at or after (ISO 8601)", _TIME),
                            _query("status", "clean, infected or handled",
                                   {"type": "string", "enum": ["clean", "infected", "handled"]}),
                            _query("sort", "the column to sort by (default id)",
                                   {"type": "string", "enum": list(HOST_SORTS)}),
                            _query("order", "asc (default) or desc",
                                   {"type": "string", "enum": ["asc", "desc"]}),
                            _query("offset", "skip this many (paging)", _INT),
                            _query("limit", "at most this many (default 1000)", _INT),
                            _query("format", "json (default) or csv",
                                   {"type": "string", "enum": ["json", "csv"]})])},
            "/api/v1/hosts/{id}": {"get": _op(
                "One host and its evidence: indicators contacted and how they were seen, "
                "hits by day, addresses, status timeline, audit log, latest alerts",
                _answer(_ref("HostDetail")), parameters=[host_id],
                description="Needs an admin token; a host outside the token's scope "
                            "answers 404 like an unknown id.")},
            "/api/v1/hosts/{id}/handled": {"post": _op(
                "Mark a host cleaned, with a note of what was done (kept in the audit log)",
                _answer(_ref("Host")), parameters=[host_id],
                requestBody={"required": False, "content": {"application/json": {
                    "schema": _obj([], note={"type": "string", "maxLength": 2000})}}})},
            "/api/v1/indicators/top": {"get": _op(
                "The indicators that most hosts hit", _answer(_obj(["indicators"], indicators={
                    "type": "array", "items": _ref("Indicator")})),
                parameters=[_query("unit", "only this unit"),
                            _query("group", "only the units of this block"),
                            _query("since", "hits on or after this day (ISO 8601)", _TIME),
                            _query("limit", "at most this many (default 20)", _INT)])},
            "/api/v1/report": {"get": _op(
                "The campaign report (forms 1 and 2) for a period, counted in the database",
                _answer(_ref("Report"), "the JSON report, or with format=md|csv|docx|xlsx "
                                        "that file as a download"),
                parameters=[_query("week", "an ISO week, e.g. 2022-W38"),
                            _query("from", "first day (with to)", _DAY),
                            _query("to", "last day, included", _DAY),
                            _query("unit", "only this unit"),
                            _query("group", "only the units of this block"),
                            _query("org", "the report of an organisation below, from what "
                                          "it sent (a province's, at the national collector)"),
                            _query("format", "json (default), md, csv, docx or xlsx",
                                   {"type": "string",
                                    "enum": ["json", "md", "csv", "docx", "xlsx"]}),
                            _query("lang", "vi (default) or en",
                                   {"type": "string", "enum": ["vi", "en"]}),
                            _query("organisation", "the reporting body's name")])},
            "/api/v1/healthz": {"get": {"summary": "Liveness and database check, no token",
                                        "responses": {"200": _answer(_obj(["status"],
                                                                          status=_STR)),
                                                      "503": _answer(_ref("Error"))}}},
            "/api/v1/openapi.json": {"get": {"summary": "This document, no token",
                                             "responses": {"200": _answer({"type": "object"})}}},
        },
    }

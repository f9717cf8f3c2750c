"""The collector's one data-access module: SQLite (WAL) or PostgreSQL, same schema.

SQL is written once, with `?` placeholders and only what both databases
understand (`ON CONFLICT … DO UPDATE`, `RETURNING`, `CASE`); the PostgreSQL
connection swaps the placeholders for `%s`. Migrations are numbered in
`MIGRATIONS` and applied at start under a lock, so several collectors sharing one
PostgreSQL can start together.

Times are stored as epoch seconds; days (for per-day hit counts) as ISO dates
in the collector's time zone. A host's status is not stored but derived when
read: `clean` (never hit), `infected`, or `handled` (an admin marked it after
its last hit, or its sensor has watched for the quiet period since without a
hit), so a new hit makes it infected again without any bookkeeping. The quiet
period runs in the sensor's time (the latest event it reported), not the
collector's clock: a silent sensor proves nothing, and a back-filled capture
from last year does not make its hosts "handled" on arrival.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import orjson

ID = "{id}"     # an auto-numbered primary key, spelled per database
QUARTER_HOUR = 900

MIGRATIONS: list[list[str]] = [
    [   # 1: the first schema
        """CREATE TABLE units (name TEXT PRIMARY KEY, grp TEXT NOT NULL DEFAULT '',
               code TEXT, parent TEXT, informed INTEGER NOT NULL DEFAULT 1,
               added DOUBLE PRECISION NOT NULL)""",
        """CREATE TABLE tokens (hash TEXT PRIMARY KEY, kind TEXT NOT NULL, name TEXT NOT NULL,
               created DOUBLE PRECISION NOT NULL, revoked DOUBLE PRECISION)""",
        "CREATE INDEX tokens_name ON tokens (name)",
        """CREATE TABLE sensors (id TEXT PRIMARY KEY, unit TEXT NOT NULL REFERENCES units (name),
               created DOUBLE PRECISION NOT NULL, last_seen DOUBLE PRECISION,
               data_until DOUBLE PRECISION, batches BIGINT NOT NULL DEFAULT 0,
               alerts BIGINT NOT NULL DEFAULT 0,
               dropped_alerts BIGINT NOT NULL DEFAULT 0)""",
        """CREATE TABLE batches (sensor TEXT NOT NULL, stream TEXT NOT NULL,
               sequence BIGINT NOT NULL, received DOUBLE PRECISION NOT NULL,
               PRIMARY KEY (sensor, stream, sequence))""",
        f"""CREATE TABLE hosts ({ID}, unit TEXT NOT NULL, identity TEXT NOT NULL,
               sensor TEXT NOT NULL, ip TEXT NOT NULL, mac TEXT,
               first_seen DOUBLE PRECISION NOT NULL, last_seen DOUBLE PRECISION NOT NULL,
               first_hit DOUBLE PRECISION, last_hit DOUBLE PRECISION,
               handled_at DOUBLE PRECISION, handled_by TEXT, UNIQUE (unit, identity))""",
        """CREATE TABLE host_hits (host_id BIGINT NOT NULL REFERENCES hosts (id),
               day TEXT NOT NULL, indicator TEXT NOT NULL, kind TEXT NOT NULL,
               hits BIGINT NOT NULL, PRIMARY KEY (host_id, day, indicator))""",
        "CREATE INDEX host_hits_day ON host_hits (day)",
        """CREATE TABLE host_days (host_id BIGINT NOT NULL REFERENCES hosts (id),
               day TEXT NOT NULL, PRIMARY KEY (host_id, day))""",
        f"""CREATE TABLE alerts ({ID}, sensor TEXT NOT NULL, unit TEXT NOT NULL,
               host_identity TEXT NOT NULL, ts DOUBLE PRECISION NOT NULL,
               indicator TEXT NOT NULL, kind TEXT NOT NULL, match TEXT NOT NULL,
               seen TEXT NOT NULL, outbound INTEGER NOT NULL, sources TEXT NOT NULL,
               campaign TEXT NOT NULL, severity INTEGER NOT NULL, proto INTEGER NOT NULL,
               src_ip TEXT NOT NULL, src_port INTEGER NOT NULL, dest_ip TEXT NOT NULL,
               dest_port INTEGER NOT NULL, resolved_from TEXT)""",
        "CREATE INDEX alerts_host ON alerts (unit, host_identity, ts)",
    ],
    [   # 2: what the campaign report reads by day: the days each sensor reported (and
        # for which unit); hosts active and hit by day
        """CREATE TABLE sensor_days (sensor TEXT NOT NULL, day TEXT NOT NULL,
               unit TEXT NOT NULL, PRIMARY KEY (sensor, day))""",
        "CREATE INDEX sensor_days_day ON sensor_days (day, unit)",
        "CREATE INDEX host_days_day ON host_days (day, host_id)",
        "DROP INDEX host_hits_day",
        "CREATE INDEX host_hits_day ON host_hits (day, host_id, indicator, kind, hits)",
        """INSERT INTO sensor_days SELECT DISTINCT h.sensor, d.day, h.unit FROM host_days d
               JOIN hosts h ON h.id = d.host_id WHERE true ON CONFLICT DO NOTHING""",
    ],
    [   # 3: hosts resolving names where the sensor cannot read them (DoT, DoQ, DoH), by day
        """CREATE TABLE host_encrypted_dns (host_id BIGINT NOT NULL REFERENCES hosts (id),
               day TEXT NOT NULL, kind TEXT NOT NULL, server TEXT NOT NULL,
               flows BIGINT NOT NULL, PRIMARY KEY (host_id, day, kind, server))""",
        "CREATE INDEX host_encrypted_dns_day ON host_encrypted_dns (day, host_id)",
        # how a host's hits on an indicator were seen each day (the report's annex)
        """CREATE TABLE host_hit_matches (host_id BIGINT NOT NULL REFERENCES hosts (id),
               day TEXT NOT NULL, indicator TEXT NOT NULL, match TEXT NOT NULL,
               PRIMARY KEY (host_id, day, indicator, match))""",
        "CREATE INDEX host_hit_matches_day ON host_hit_matches (day, indicator, host_id)",
    ],
]

STATUSES = ("clean", "infected", "handled")
_STATUS_SQL = """CASE WHEN h.last_hit IS NULL THEN 'clean'
    WHEN h.handled_at IS NOT NULL AND h.handled_at >= h.last_hit THEN 'handled'
    WHEN h.last_hit < s.data_until - ? THEN 'handled' ELSE 'infected' END"""
_HOST_SQL = f"""SELECT h.id, h.unit, h.sensor, h.ip, h.mac, h.first_seen, h.last_seen,
    CAST(COALESCE(SUM(x.hits), 0) AS BIGINT), COUNT(DISTINCT x.indicator),
    {_STATUS_SQL} AS status, h.handled_at,
    h.handled_by, h.last_hit
    FROM hosts h JOIN sensors s ON s.id = h.sensor
    LEFT JOIN host_hits x ON x.host_id = h.id"""
_HOST_GROUP = (" GROUP BY h.id, h.unit, h.sensor, h.ip, h.mac, h.first_seen, h.last_seen,"
               " h.handled_at, h.handled_by, h.last_hit, s.data_until")


class StoreError(Exception):
    """The database cannot be opened or used as configured."""


def token_hash(token: str) -> str:
    """Tokens are 256 random bits, so one SHA-256 is enough: no dictionary to slow down."""
    return hashlib.sha256(token.encode()).hexdigest()


def _later(column: str) -> str:
    """SQL for the later of a host's column and its new value, either of them NULL."""
    return (f"CASE WHEN hosts.{column} IS NULL OR excluded.{column} > hosts.{column} "
            f"THEN excluded.{column} ELSE hosts.{column} END")


def _earlier(column: str) -> str:
    return (f"CASE WHEN hosts.{column} IS NULL OR excluded.{column} < hosts.{column} "
            f"THEN excluded.{column} ELSE hosts.{column} END")


_UPSERT_HOST = f"""INSERT INTO hosts (unit, identity, sensor, ip, mac, first_seen, last_seen,
        first_hit, last_hit) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (unit, identity) DO UPDATE SET sensor = excluded.sensor, ip = excluded.ip,
        mac = COALESCE(excluded.mac, hosts.mac),
        first_seen = {_earlier('first_seen')}, last_seen = {_later('last_seen')},
        first_hit = {_earlier('first_hit')}, last_hit = {_later('last_hit')}"""


@dataclass
class Host:
    id: int
    unit: str
    sensor: str
    ip: str
    mac: str | None
    first_seen: float
    last_seen: float
    hits: int
    indicators: int
    status: str
    handled_at: float | None
    handled_by: str | None
    last_hit: float | None


class Store:
    """Thread-safe: each thread gets its own connection."""

    def __init__(self, url: str, tz: tzinfo, quiet_period_days: float = 7.0) -> None:
        self.url = url
        self.tz = tz
        self.quiet_seconds = quiet_period_days * 86400
        parts = urlsplit(url)
        if parts.scheme == "sqlite":
            self.postgres = False
            self._path = Path(unquote(parts.path))
            if not self._path.name:
                raise StoreError(f"no file in the SQLite URL {url!r} (sqlite:///path/file.db)")
        elif parts.scheme in ("postgresql", "postgres"):
            self.postgres = True
        else:
            raise StoreError(f"database must be sqlite:///PATH or postgresql://…, not {url!r}")
        self._local = threading.local()
        self._day = lru_cache(maxsize=4096)(self._day_uncached)

    # -- connections ---------------------------------------------------------------------
    def _connect(self) -> Any:
        if self.postgres:
            try:
                import psycopg
                return psycopg.connect(self.url, autocommit=True)
            except Exception as err:    # psycopg raises several types for a bad URL/server
                raise StoreError(f"cannot connect to PostgreSQL: {err}") from err
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False,
                                 timeout=30)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA foreign_keys=ON")
        except (sqlite3.Error, OSError) as err:
            raise StoreError(f"cannot open SQLite database {self._path}: {err}") from err
        return db

    @property
    def _db(self) -> Any:
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = self._connect()
        return db

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.postgres else sql

    def _execute(self, sql: str, params: Sequence = ()) -> Any:
        return self._db.execute(self._sql(sql), params)

    def _executemany(self, sql: str, rows: Iterable[Sequence]) -> None:
        if self.postgres:
            with self._db.cursor() as cursor:
                cursor.executemany(self._sql(sql), list(rows))
        else:
            self._db.executemany(sql, rows)

    def _transaction(self) -> Any:
        store = self

        class _Tx:
            def __enter__(self) -> None:
                store._db.execute("BEGIN" if store.postgres else "BEGIN IMMEDIATE")

            def __exit__(self, kind: Any, value: Any, tb: Any) -> None:
                store._db.execute("COMMIT" if kind is None else "ROLLBACK")
        return _Tx()

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    # -- schema ----------------------------------------------------------------------------
    def migrate(self) -> int:
        """Apply the migrations this database lacks; returns the schema version."""
        serial = "id BIGSERIAL PRIMARY KEY" if self.postgres else "id INTEGER PRIMARY KEY"
        with self._transaction():
            if self.postgres:
                self._execute("SELECT pg_advisory_xact_lock(7246811)")
            self._execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = self._execute("SELECT MAX(version) FROM schema_version").fetchone()
            version = row[0] or 0
            for number, statements in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in statements:
                    self._execute(statement.replace(ID, serial))
                self._execute("INSERT INTO schema_version VALUES (?)", (number,))
        return len(MIGRATIONS)

    def ping(self) -> None:
        self._execute("SELECT 1").fetchone()

    # -- units -------------------------------------------------------------------------------
    def add_unit(self, name: str, group: str = "", code: str | None = None,
                 parent: str | None = None, now: float = 0.0,
                 informed: bool | None = None) -> bool:
        """Add a unit, or update its group/code/parent/informed mark (what is given);
        True when it was new. A new unit is informed unless told otherwise."""
        new = not self.has_unit(name)
        self._execute(
            "INSERT INTO units (name, grp, code, parent, informed, added) "
            "VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET grp = CASE WHEN excluded.grp = '' THEN units.grp "
            "ELSE excluded.grp END, code = COALESCE(excluded.code, units.code), "
            "parent = COALESCE(excluded.parent, units.parent), "
            "informed = CASE WHEN ? THEN excluded.informed ELSE units.informed END",
            (name, group, code, parent, int(informed is not False), now, informed is not None))
        return new

    def units(self) -> list[dict[str, Any]]:
        rows = self._execute("SELECT u.name, u.grp, u.code, u.parent, COUNT(s.id) FROM units u "
                             "LEFT JOIN sensors s ON s.unit = u.name GROUP BY u.name, u.grp, "
                             "u.code, u.parent ORDER BY u.grp, u.name").fetchall()
        return [{"unit": r[0], "group": r[1], "code": r[2], "parent": r[3], "sensors": r[4]}
                for r in rows]

    def has_unit(self, name: str) -> bool:
        return self._execute("SELECT 1 FROM units WHERE name = ?", (name,)).fetchone() is not None

    # -- tokens ------------------------------------------------------------------------------
    def add_sensor_token(self, sensor_id: str, unit: str, now: float) -> str:
        """Register (or move) a sensor and issue it a new token; returns the token."""
        token = "madoc_" + secrets.token_urlsafe(32)
        with self._transaction():
            self.add_sensor(sensor_id, unit, now)
            self._execute("INSERT INTO tokens VALUES (?, 'sensor', ?, ?, NULL)",
                          (token_hash(token), sensor_id, now))
        return token

    def add_sensor(self, sensor_id: str, unit: str, now: float) -> None:
        """Register a sensor in a unit (or move it there)."""
        self._execute("INSERT INTO sensors (id, unit, created) VALUES (?, ?, ?) "
                      "ON CONFLICT (id) DO UPDATE SET unit = excluded.unit",
                      (sensor_id, unit, now))

    def last_sequence(self, sensor_id: str, stream: str) -> int:
        row = self._execute("SELECT MAX(sequence) FROM batches WHERE sensor = ? AND stream = ?",
                            (sensor_id, stream)).fetchone()
        return row[0] or 0

    def add_admin_token(self, name: str, now: float, token: str | None = None) -> str:
        token = token or "madoc_" + secrets.token_urlsafe(32)
        self._execute("INSERT INTO tokens VALUES (?, 'admin', ?, ?, NULL) "
                      "ON CONFLICT (hash) DO NOTHING", (token_hash(token), name, now))
        return token

    def revoke(self, name_or_id: str, now: float) -> int:
        """Revoke the tokens of a sensor or admin name, or one token by its id (hash prefix)."""
        is_id = len(name_or_id) >= 8 and all(c in "0123456789abcdef" for c in name_or_id)
        cursor = self._execute(
            "UPDATE tokens SET revoked = ? WHERE revoked IS NULL AND (name = ? OR hash LIKE ?)",
            (now, name_or_id, name_or_id + "%" if is_id else ""))
        return cursor.rowcount

    def tokens(self) -> list[dict[str, Any]]:
        rows = self._execute("SELECT SUBSTR(t.hash, 1, 12), t.kind, t.name, s.unit, t.created, "
                             "t.revoked FROM tokens t LEFT JOIN sensors s ON t.kind = 'sensor' "
                             "AND s.id = t.name ORDER BY t.kind, t.name, t.created").fetchall()
        return [{"id": r[0], "kind": r[1], "name": r[2], "unit": r[3], "created": r[4],
                 "revoked": r[5]} for r in rows]

    def authenticate(self, token: str) -> tuple[str, str, str | None] | None:
        """(kind, name, the sensor's unit) for a valid, unrevoked token; None otherwise."""
        row = self._execute(
            "SELECT t.kind, t.name, s.unit FROM tokens t LEFT JOIN sensors s "
            "ON t.kind = 'sensor' AND s.id = t.name WHERE t.hash = ? AND t.revoked IS NULL",
            (token_hash(token),)).fetchone()
        return (row[0], row[1], row[2]) if row else None

    # -- ingest ------------------------------------------------------------------------------
    def _day_uncached(self, epoch: int) -> str:
        return datetime.fromtimestamp(epoch, self.tz).date().isoformat()

    def ingest(self, envelope: dict[str, Any], now: float) -> bool:
        """Store one validated batch; False when this (sensor, stream, sequence) was
        stored before (the batch is then ignored: exactly once)."""
        return self.ingest_many([envelope], now)[0]

    def ingest_many(self, envelopes: list[dict[str, Any]], now: float) -> list[bool]:
        """Store several validated batches in one transaction (one commit, one fsync:
        the collector's group commit on SQLite); for each, whether it was new. A
        batch that appears twice is stored once."""
        with self._transaction():
            return [self._ingest(envelope, now) for envelope in envelopes]

    def _ingest(self, envelope: dict[str, Any], now: float) -> bool:
        sensor = envelope["sensor"]
        fresh = self._execute(
            "INSERT INTO batches VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING "
            "RETURNING sequence",
            (sensor, envelope["stream"], envelope["sequence"], now)).fetchone()
        if fresh is None:
            return False
        unit = self._execute("SELECT unit FROM sensors WHERE id = ?", (sensor,)).fetchone()[0]
        host_ids = self._upsert_hosts(unit, sensor, envelope)
        day = self._day
        self._executemany(
            "INSERT INTO host_hits VALUES (?, ?, ?, ?, ?) ON CONFLICT (host_id, day, "
            "indicator) DO UPDATE SET hits = host_hits.hits + excluded.hits",
            sorted((host_ids[_identity(c)], day(c["hour"]), c["indicator"],
                    c["indicator_type"], c["hits"]) for c in envelope["counts"]))
        self._executemany(
            "INSERT INTO host_hit_matches VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
            sorted({(host_ids[_identity(c)], day(c["hour"]), c["indicator"], match)
                    for c in envelope["counts"] for match in c.get("matches", ())}))
        encrypted = envelope.get("encrypted_dns", [])
        self._executemany(
            "INSERT INTO host_days VALUES (?, ?) ON CONFLICT DO NOTHING",
            sorted({(host_ids[_identity(s)], day(s["hour"]))
                    for s in envelope["hosts_seen"] + encrypted}))
        self._executemany(
            "INSERT INTO host_encrypted_dns VALUES (?, ?, ?, ?, ?) ON CONFLICT (host_id, day, "
            "kind, server) DO UPDATE SET flows = host_encrypted_dns.flows + excluded.flows",
            sorted((host_ids[_identity(e)], day(e["hour"]), e["kind"], e["server"], e["flows"])
                   for e in encrypted))
        alerts = envelope["alerts"]
        # Days by quarter hour: every time zone's midnight falls on one, so the day is
        # the same, and 500 alerts' times come down to a few keys of the day cache.
        self._executemany(
            "INSERT INTO sensor_days VALUES (?, ?, ?) ON CONFLICT (sensor, day) "
            "DO UPDATE SET unit = excluded.unit",
            sorted({(sensor, day(int(epoch) // QUARTER_HOUR * QUARTER_HOUR), unit)
                    for epoch in [now] + [a["ts"] for a in alerts]
                    + [r["hour"] for r in envelope["hosts_seen"] + envelope["counts"]]}))
        self._executemany(
            "INSERT INTO alerts (sensor, unit, host_identity, ts, indicator, kind, match, "
            "seen, outbound, sources, campaign, severity, proto, src_ip, src_port, dest_ip, "
            "dest_port, resolved_from) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
            "?, ?, ?)",
            [(sensor, unit, _identity(a), a["ts"], a["indicator"], a["indicator_type"],
              a["match"], a["seen"], int(a["outbound"]), orjson.dumps(a["sources"]).decode(),
              a["campaign"], a["severity"], a["proto"], a["src_ip"], a["src_port"],
              a["dest_ip"], a["dest_port"], a.get("resolved_from")) for a in alerts])
        until = max([a["ts"] for a in alerts] + [r["last"] for r in envelope["counts"]]
                    + [r["last"] for r in envelope["hosts_seen"]], default=None)
        self._execute("UPDATE sensors SET last_seen = ?, batches = batches + 1, "
                      "alerts = alerts + ?, dropped_alerts = dropped_alerts + ?, "
                      "data_until = CASE WHEN data_until IS NULL OR ? > data_until THEN ? "
                      "ELSE data_until END WHERE id = ?",
                      (now, len(alerts), envelope["dropped_alerts"], until, until, sensor))
        return True

    def _upsert_hosts(self, unit: str, sensor: str, envelope: dict[str, Any]) -> dict[str, int]:
        """One row per host of the batch: seen span and hit span merged in; returns ids."""
        spans: dict[str, list] = {}   # identity → [ip, mac, first, last, first_hit, last_hit]
        for row, is_hit in ([(s, False) for s in envelope["hosts_seen"]]
                            + [(e, False) for e in envelope.get("encrypted_dns", [])]
                            + [(c, True) for c in envelope["counts"]]):
            identity = _identity(row)
            span = spans.get(identity)
            if span is None:
                span = spans[identity] = [row["host_ip"], row["host_mac"], row["first"],
                                          row["last"], None, None]
            span[2] = min(span[2], row["first"])
            span[3] = max(span[3], row["last"])
            if is_hit:
                span[4] = row["first"] if span[4] is None else min(span[4], row["first"])
                span[5] = row["last"] if span[5] is None else max(span[5], row["last"])
        identities = sorted(spans)      # one order for every writer: no deadlocks
        self._executemany(_UPSERT_HOST, [(unit, identity, sensor, *spans[identity])
                                         for identity in identities])
        ids: dict[str, int] = {}
        for start in range(0, len(identities), 500):
            chunk = identities[start:start + 500]
            ids.update(self._execute(
                f"SELECT identity, id FROM hosts WHERE unit = ? AND identity IN "
                f"({', '.join('?' * len(chunk))})", (unit, *chunk)).fetchall())
        return ids

    # -- reading ---------------------------------------------------------------------------
    def sensors(self) -> list[dict[str, Any]]:
        rows = self._execute("SELECT id, unit, created, last_seen, batches, alerts, "
                             "dropped_alerts FROM sensors ORDER BY unit, id").fetchall()
        return [{"id": r[0], "unit": r[1], "created": r[2], "last_seen": r[3], "batches": r[4],
                 "alerts": r[5], "dropped_alerts": r[6]} for r in rows]

    def hosts_by_status(self) -> list[tuple[str, str, int]]:
        """(unit, status, hosts), counted in the database."""
        return self._execute(
            f"SELECT q.unit, q.status, COUNT(*) FROM ({_HOST_SQL} WHERE 1 = 1{_HOST_GROUP}) q "
            "GROUP BY q.unit, q.status ORDER BY 1, 2", (self.quiet_seconds,)).fetchall()

    def hosts(self, unit: str | None = None, since: float | None = None,
              status: str | None = None, limit: int = 1000) -> list[Host]:
        where, params = _where(("h.unit = ?", unit), ("h.last_seen >= ?", since))
        params.insert(0, self.quiet_seconds)
        sql = f"{_HOST_SQL} WHERE {where}{_HOST_GROUP}"
        if status is not None:
            sql = f"SELECT * FROM ({sql}) q WHERE q.status = ?"
            params.append(status)
        rows = self._execute(f"{sql} ORDER BY 1 LIMIT ?", (*params, limit)).fetchall()
        return [Host(*row) for row in rows]

    def host(self, host_id: int) -> Host | None:
        row = self._execute(f"{_HOST_SQL} WHERE h.id = ?{_HOST_GROUP}",
                            (self.quiet_seconds, host_id)).fetchone()
        return Host(*row) if row else None

    def host_detail(self, host: Host, alerts: int = 50) -> dict[str, Any]:
        hits = self._execute("SELECT day, indicator, kind, hits FROM host_hits WHERE host_id = ? "
                             "ORDER BY day, indicator", (host.id,)).fetchall()
        identity = self._execute("SELECT identity FROM hosts WHERE id = ?",
                                 (host.id,)).fetchone()[0]
        recent = self._execute(
            "SELECT ts, sensor, indicator, kind, match, seen, sources, campaign, severity, "
            "src_ip, src_port, dest_ip, dest_port, resolved_from FROM alerts "
            "WHERE unit = ? AND host_identity = ? ORDER BY ts DESC LIMIT ?",
            (host.unit, identity, alerts)).fetchall()
        return {"hits_by_day": [{"day": r[0], "indicator": r[1], "indicator_type": r[2],
                                 "hits": r[3]} for r in hits],
                "recent_alerts": [{"ts": r[0], "sensor": r[1], "indicator": r[2],
                                   "indicator_type": r[3], "match": r[4], "seen": r[5],
                                   "sources": orjson.loads(r[6]), "campaign": r[7],
                                   "severity": r[8], "src_ip": r[9], "src_port": r[10],
                                   "dest_ip": r[11], "dest_port": r[12],
                                   "resolved_from": r[13]} for r in recent]}

    def mark_handled(self, host_id: int, by: str, now: float) -> bool:
        cursor = self._execute("UPDATE hosts SET handled_at = ?, handled_by = ? WHERE id = ?",
                               (now, by, host_id))
        return cursor.rowcount == 1

    def top_indicators(self, unit: str | None = None, since_day: str | None = None,
                       limit: int = 20, until_day: str | None = None) -> list[dict[str, Any]]:
        where, params = _where(("h.unit = ?", unit), ("x.day >= ?", since_day),
                               ("x.day <= ?", until_day))
        rows = self._execute(
            "SELECT x.indicator, x.kind, CAST(SUM(x.hits) AS BIGINT), "
            "COUNT(DISTINCT x.host_id) FROM host_hits x "
            f"JOIN hosts h ON h.id = x.host_id WHERE {where} "
            "GROUP BY x.indicator, x.kind ORDER BY 4 DESC, 3 DESC, 1 LIMIT ?",
            (*params, limit)).fetchall()
        return [{"indicator": r[0], "indicator_type": r[1], "hits": r[2], "hosts": r[3]}
                for r in rows]

    # -- the campaign report ---------------------------------------------------------------
    def report_rows(self, first_day: str, last_day: str, unit: str | None = None,
                    group: str | None = None, top: int = 10,
                    infected_limit: int = 1000) -> ReportRows:
        """Everything the report forms need for the days first_day..last_day (ISO dates,
        inclusive), counted in the database. The scope is one unit, one group, or all."""
        scope, scope_params = _report_scope(unit, group)
        # host_days and host_hits rows of the scope's hosts only, chosen before grouping
        hosts = (f" AND host_id IN (SELECT id FROM hosts WHERE {scope('unit')})"
                 if scope_params else "")
        days = (first_day, last_day)
        units = self._execute(
            f"SELECT u.name, u.grp, u.informed, EXISTS (SELECT 1 FROM sensor_days d WHERE "
            f"d.unit = u.name AND d.day BETWEEN ? AND ?) FROM units u WHERE {scope('u.name')} "
            f"ORDER BY u.grp, u.name", (*days, *scope_params)).fetchall()
        sensors = self._execute(
            f"SELECT s.id, s.unit, s.last_seen, EXISTS (SELECT 1 FROM sensor_days d WHERE "
            f"d.sensor = s.id AND d.day BETWEEN ? AND ?) FROM sensors s "
            f"WHERE {scope('s.unit')} ORDER BY s.unit, s.id", (*days, *scope_params)).fetchall()
        covered = self._execute(
            f"SELECT h.unit, COUNT(*) FROM (SELECT DISTINCT host_id FROM host_days WHERE day "
            f"BETWEEN ? AND ?{hosts}) d JOIN hosts h ON h.id = d.host_id GROUP BY h.unit",
            (*days, *scope_params)).fetchall()
        # One pass over the found hosts gives both their count per unit and the list of
        # those still infected (the query behind them is the report's dearest).
        found_per_unit: dict[str, list[int]] = {}
        infected = []
        for unit_name, host_id, ip, mac, sensor, last_hit, hits, status in self._execute(
                f"SELECT q.unit, q.id, q.ip, q.mac, q.sensor, q.last_hit, q.hits, q.status "
                f"FROM ({_FOUND_SQL.format(hosts=hosts)}) q "
                f"ORDER BY q.unit, q.hits DESC, q.id",
                (self.quiet_seconds, *days, *scope_params)).fetchall():
            counts = found_per_unit.setdefault(unit_name, [0, 0])
            counts[0] += 1
            if status == "handled":
                counts[1] += 1
            elif status == "infected" and len(infected) < infected_limit:
                infected.append((unit_name, host_id, ip, mac, sensor, last_hit, hits))
        found = [(unit_name, *counts) for unit_name, counts in found_per_unit.items()]
        indicators = self._execute(
            f"""SELECT r.unit, r.indicator, r.kind, r.hits, r.hosts FROM (
                SELECT h.unit, q.indicator, q.kind, CAST(SUM(q.hits) AS BIGINT) AS hits,
                    COUNT(*) AS hosts, ROW_NUMBER() OVER (PARTITION BY h.unit
                    ORDER BY COUNT(*) DESC, SUM(q.hits) DESC, q.indicator) AS rank
                FROM (SELECT host_id, indicator, kind, SUM(hits) AS hits FROM host_hits
                      WHERE day BETWEEN ? AND ?{hosts} GROUP BY host_id, indicator, kind) q
                JOIN hosts h ON h.id = q.host_id
                GROUP BY h.unit, q.indicator, q.kind) r
            WHERE r.rank <= ? ORDER BY r.unit, r.rank""",
            (*days, *scope_params, top)).fetchall()
        matches = self._indicator_matches(days, indicators, hosts, scope_params)
        encrypted = self._execute(
            f"""SELECT h.unit, h.id, h.ip, h.mac, h.sensor, e.kind, e.server,
                    CAST(SUM(e.flows) AS BIGINT)
                FROM host_encrypted_dns e JOIN hosts h ON h.id = e.host_id
                WHERE e.day BETWEEN ? AND ?{hosts}
                GROUP BY h.unit, h.id, h.ip, h.mac, h.sensor, e.kind, e.server
                ORDER BY h.unit, h.id, e.kind, e.server""",
            (*days, *scope_params)).fetchall()
        return ReportRows(units, sensors, covered, found, infected, indicators, encrypted,
                          matches)

    def _indicator_matches(self, days: tuple[str, str], indicators: list[tuple], hosts: str,
                           scope_params: list) -> list[tuple]:
        """(unit, indicator, match point) of the given top indicators' hits in the
        period: how each was seen."""
        wanted = sorted({row[1] for row in indicators})
        found: list[tuple] = []
        for chunk in range(0, len(wanted), 500):
            names = wanted[chunk:chunk + 500]
            found += self._execute(
                f"SELECT DISTINCT h.unit, m.indicator, m.match FROM host_hit_matches m "
                f"JOIN hosts h ON h.id = m.host_id WHERE m.day BETWEEN ? AND ?{hosts} "
                f"AND m.indicator IN ({', '.join('?' * len(names))}) ORDER BY 1, 2, 3",
                (*days, *scope_params, *names)).fetchall()
        return found


# Hosts with at least one hit in the period: their status now and their hits in the
# period. Parameters: quiet seconds, first day, last day, then the scope's (`hosts`).
# The hits are summed per host before the join, which then joins one row a host, not
# one a hit row.
_FOUND_SQL = f"""SELECT h.id, h.unit, h.ip, h.mac, h.sensor, h.last_hit, f.hits,
    {_STATUS_SQL} AS status
    FROM (SELECT host_id, CAST(SUM(hits) AS BIGINT) AS hits FROM host_hits
          WHERE day BETWEEN ? AND ?{{hosts}} GROUP BY host_id) f
    JOIN hosts h ON h.id = f.host_id JOIN sensors s ON s.id = h.sensor"""


@dataclass
class ReportRows:
    """The report's raw rows, as the database counted them (see sensor.collector.report)."""
    units: list[tuple]          # (unit, group, informed, deployed)
    sensors: list[tuple]        # (id, unit, last_seen, reported in the period)
    covered: list[tuple]        # (unit, distinct hosts active)
    found: list[tuple]          # (unit, distinct hosts hit, of which handled now)
    infected: list[tuple]       # (unit, host id, ip, mac, sensor, last hit, hits in period)
    indicators: list[tuple]     # (unit, indicator, kind, hits, hosts), top N per unit
    encrypted_dns: list[tuple]  # (unit, host id, ip, mac, sensor, kind, server, flows)
    matches: list[tuple]        # (unit, indicator, match point) of the top indicators


def _report_scope(unit: str | None, group: str | None) -> tuple[Callable[[str], str], list]:
    """A WHERE condition on a unit-name column for the report's scope, and its parameters."""
    if unit is not None:
        return (lambda column: f"{column} = ?"), [unit]
    if group is not None:
        return (lambda column: f"{column} IN (SELECT name FROM units WHERE grp = ?)"), [group]
    return (lambda column: "1 = 1"), []


def _identity(row: dict[str, Any]) -> str:
    """A host is its MAC address when the sensor knows it, else its IP address."""
    mac = row["host_mac"]
    return f"mac:{mac}" if mac else f"ip:{row['host_ip']}"


def _where(*conditions: tuple[str, object]) -> tuple[str, list]:
    """A WHERE clause of the conditions whose value is given, and their parameters."""
    given = [(clause, value) for clause, value in conditions if value is not None]
    return " AND ".join(clause for clause, _ in given) or "1 = 1", [v for _, v in given]

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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import orjson

ID = "{id}"     # an auto-numbered primary key, spelled per database
MONTHLY = "{monthly}"   # PostgreSQL: a table partitioned by month of its `day`; SQLite: plain
QUARTER_HOUR = 900

# An organisation's computers per month from its day tables: active (sent as seen), hit.
_MONTH_ROWS = """SELECT org, SUBSTR(day, 1, 7), unit, host, MAX(active), MAX(hit) FROM (
    SELECT org, day, unit, host, 1 AS active, 0 AS hit FROM org_host_days {where}
    UNION ALL SELECT org, day, unit, host, 0, 1 FROM org_host_hits {where}) x
    GROUP BY org, SUBSTR(day, 1, 7), unit, host"""
MONTHS_FROM_DAYS = "INSERT INTO org_host_months " + _MONTH_ROWS.format(where="")
# Organisations below that are units here too (see Store.departments), and the name a
# department's unit has here: `department_unit` in SQL.
_DEPARTMENTS = ("SELECT name FROM units WHERE name IN (SELECT name FROM tokens "
                "WHERE kind = 'org' UNION SELECT org FROM org_units)")
_BELOW_UNIT = "org || ' / ' || unit"


def department_unit(department: str, unit: str) -> str:
    """The name a unit of a department's collector has here: `Sở Y tế / Bệnh viện A`."""
    return f"{department} / {unit}"
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
    [   # 4: staff accounts scoped to one unit or one block
        "ALTER TABLE tokens ADD COLUMN unit TEXT",
        "ALTER TABLE tokens ADD COLUMN grp TEXT",
        # what staff did to a host, who and when (the audit log); existing marks first
        f"""CREATE TABLE host_actions ({ID}, host_id BIGINT NOT NULL REFERENCES hosts (id),
               ts DOUBLE PRECISION NOT NULL, action TEXT NOT NULL, by_name TEXT NOT NULL,
               note TEXT NOT NULL)""",
        "CREATE INDEX host_actions_host ON host_actions (host_id, ts)",
        "CREATE INDEX host_actions_ts ON host_actions (ts, host_id)",
        """INSERT INTO host_actions (host_id, ts, action, by_name, note) SELECT id,
               handled_at, 'handled', COALESCE(handled_by, ''), '' FROM hosts
               WHERE handled_at IS NOT NULL""",
        # the addresses a host was seen at, by which sensor, first and last
        """CREATE TABLE host_addresses (host_id BIGINT NOT NULL REFERENCES hosts (id),
               ip TEXT NOT NULL, mac TEXT NOT NULL, sensor TEXT NOT NULL,
               first_seen DOUBLE PRECISION NOT NULL, last_seen DOUBLE PRECISION NOT NULL,
               PRIMARY KEY (host_id, ip, mac))""",
        """INSERT INTO host_addresses SELECT id, ip, COALESCE(mac, ''), sensor, first_seen,
               last_seen FROM hosts""",
        # the first and last hit of each host-day-indicator row (NULL on older rows)
        "ALTER TABLE host_hits ADD COLUMN first_ts DOUBLE PRECISION",
        "ALTER TABLE host_hits ADD COLUMN last_ts DOUBLE PRECISION",
        # each host's hits per indicator over all time: the computer list's totals
        # without summing every day's rows of every host
        """CREATE TABLE host_indicators (host_id BIGINT NOT NULL REFERENCES hosts (id),
               indicator TEXT NOT NULL, kind TEXT NOT NULL, hits BIGINT NOT NULL,
               first_ts DOUBLE PRECISION, last_ts DOUBLE PRECISION,
               PRIMARY KEY (host_id, indicator))""",
        "CREATE INDEX host_indicators_indicator ON host_indicators (indicator, host_id)",
        """INSERT INTO host_indicators SELECT host_id, indicator, MIN(kind),
               CAST(SUM(hits) AS BIGINT), NULL, NULL FROM host_hits
               GROUP BY host_id, indicator""",
    ],
    [   # 5: reporting upward. Below (a province): the days whose state changed since
        # they were last sent, and the status each host had when last sent.
        "ALTER TABLE sensor_days ADD COLUMN changed DOUBLE PRECISION NOT NULL DEFAULT 0",
        "CREATE TABLE upstream_state (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        """CREATE TABLE upstream_sent (host_id BIGINT PRIMARY KEY REFERENCES hosts (id),
               status TEXT NOT NULL)""",
        # Above (the nation): what each organisation below sent. Hosts are keyed hashes.
        """CREATE TABLE org_units (org TEXT NOT NULL, unit TEXT NOT NULL, grp TEXT NOT NULL,
               code TEXT, parent TEXT, informed INTEGER NOT NULL, PRIMARY KEY (org, unit))""",
        """CREATE TABLE org_sensors (org TEXT NOT NULL, sensor TEXT NOT NULL,
               unit TEXT NOT NULL, last_seen DOUBLE PRECISION, PRIMARY KEY (org, sensor))""",
        """CREATE TABLE org_sensor_days (org TEXT NOT NULL, day TEXT NOT NULL,
               unit TEXT NOT NULL, sensor TEXT NOT NULL, PRIMARY KEY (org, day, unit, sensor))""",
        f"""CREATE TABLE org_host_days (org TEXT NOT NULL, day TEXT NOT NULL,
               unit TEXT NOT NULL, host TEXT NOT NULL, PRIMARY KEY (org, day, unit, host))
               {MONTHLY}""",
        f"""CREATE TABLE org_host_hits (org TEXT NOT NULL, day TEXT NOT NULL,
               unit TEXT NOT NULL, host TEXT NOT NULL, indicator TEXT NOT NULL,
               kind TEXT NOT NULL, hits BIGINT NOT NULL,
               PRIMARY KEY (org, day, unit, host, indicator)) {MONTHLY}""",
        "CREATE INDEX org_host_hits_day ON org_host_hits (day, org, unit, host)",
        "CREATE INDEX org_host_days_day ON org_host_days (day, org, unit, host)",
        """CREATE TABLE org_hosts (org TEXT NOT NULL, unit TEXT NOT NULL, host TEXT NOT NULL,
               status TEXT NOT NULL, ip TEXT, mac TEXT, PRIMARY KEY (org, unit, host))""",
    ],
    [   # 6: each organisation's computers per month, active and hit: a period's distinct
        # computers come from here for its whole months, from the day tables for the rest.
        """CREATE TABLE org_host_months (org TEXT NOT NULL, month TEXT NOT NULL,
               unit TEXT NOT NULL, host TEXT NOT NULL, active INTEGER NOT NULL,
               hit INTEGER NOT NULL, PRIMARY KEY (org, month, unit, host))""",
        MONTHS_FROM_DAYS,
        # when each organisation's day last arrived: a department's days go further up
        """CREATE TABLE org_days (org TEXT NOT NULL, day TEXT NOT NULL,
               changed DOUBLE PRECISION NOT NULL, PRIMARY KEY (org, day))""",
    ],
]

STATUSES = ("clean", "infected", "handled")
_STATUS_SQL = """CASE WHEN h.last_hit IS NULL THEN 'clean'
    WHEN h.handled_at IS NOT NULL AND h.handled_at >= h.last_hit THEN 'handled'
    WHEN h.last_hit < s.data_until - ? THEN 'handled' ELSE 'infected' END"""
_HOST_SQL = f"""SELECT h.id, h.unit, h.sensor, h.ip, h.mac, h.first_seen, h.last_seen,
    CAST(COALESCE(SUM(x.hits), 0) AS BIGINT) AS hits, COUNT(x.indicator) AS indicators,
    {_STATUS_SQL} AS status, h.handled_at,
    h.handled_by, h.last_hit
    FROM hosts h JOIN sensors s ON s.id = h.sensor
    LEFT JOIN host_indicators x ON x.host_id = h.id"""
_HOST_GROUP = (" GROUP BY h.id, h.unit, h.sensor, h.ip, h.mac, h.first_seen, h.last_seen,"
               " h.handled_at, h.handled_by, h.last_hit, s.data_until")
# The computer list's sortable columns (a request names the key) and their SQL.
HOST_SORTS = {"id": "q.id", "unit": "q.unit", "ip": "q.ip", "mac": "q.mac",
              "sensor": "q.sensor", "hits": "q.hits", "indicators": "q.indicators",
              "first_seen": "q.first_seen", "last_seen": "q.last_seen",
              "last_hit": "q.last_hit", "status": "q.status"}


class StoreError(Exception):
    """The database cannot be opened or used as configured."""


def token_hash(token: str) -> str:
    """Tokens are 256 random bits, so one SHA-256 is enough: no dictionary to slow down."""
    return hashlib.sha256(token.encode()).hexdigest()


def _later(column: str, table: str = "hosts") -> str:
    """SQL for the later of a row's column and its new value, either of them NULL."""
    return (f"CASE WHEN {table}.{column} IS NULL OR excluded.{column} > {table}.{column} "
            f"THEN excluded.{column} ELSE {table}.{column} END")


def _earlier(column: str, table: str = "hosts") -> str:
    return (f"CASE WHEN {table}.{column} IS NULL OR excluded.{column} < {table}.{column} "
            f"THEN excluded.{column} ELSE {table}.{column} END")


_UPSERT_HOST = f"""INSERT INTO hosts (unit, identity, sensor, ip, mac, first_seen, last_seen,
        first_hit, last_hit) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (unit, identity) DO UPDATE SET sensor = excluded.sensor, ip = excluded.ip,
        mac = COALESCE(excluded.mac, hosts.mac),
        first_seen = {_earlier('first_seen')}, last_seen = {_later('last_seen')},
        first_hit = {_earlier('first_hit')}, last_hit = {_later('last_hit')}"""
_UPSERT_HITS = f"""INSERT INTO host_hits (host_id, day, indicator, kind, hits, first_ts, last_ts)
    VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (host_id, day, indicator) DO UPDATE SET
        hits = host_hits.hits + excluded.hits, first_ts = {_earlier('first_ts', 'host_hits')},
        last_ts = {_later('last_ts', 'host_hits')}"""
_UPSERT_INDICATORS = f"""INSERT INTO host_indicators VALUES (?, ?, ?, ?, ?, ?)
    ON CONFLICT (host_id, indicator) DO UPDATE SET
        hits = host_indicators.hits + excluded.hits,
        first_ts = {_earlier('first_ts', 'host_indicators')},
        last_ts = {_later('last_ts', 'host_indicators')}"""
_UPSERT_ADDRESSES = f"""INSERT INTO host_addresses VALUES (?, ?, ?, ?, ?, ?)
    ON CONFLICT (host_id, ip, mac) DO UPDATE SET sensor = excluded.sensor,
        first_seen = {_earlier('first_seen', 'host_addresses')},
        last_seen = {_later('last_seen', 'host_addresses')}"""


@dataclass(frozen=True)
class Scope:
    """The units a request may see: those that meet every condition (this unit, a unit
    of this block). No condition: every unit. A staff account's scope is narrowed by
    what a request asks for, never widened, so an out-of-scope unit, host or sensor
    is simply absent from every answer."""
    units: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()

    @classmethod
    def of(cls, unit: str | None = None, group: str | None = None) -> Scope:
        return cls((unit,) if unit else (), (group,) if group else ())

    def narrow(self, unit: str | None = None, group: str | None = None) -> Scope:
        extra = Scope.of(unit, group)
        return Scope(self.units + extra.units, self.groups + extra.groups)

    @property
    def everything(self) -> bool:
        return not self.units and not self.groups

    def sql(self, column: str) -> str:
        """A condition on a unit-name column; its parameters are `params`."""
        return " AND ".join([f"{column} = ?"] * len(self.units) + [
            f"{column} IN (SELECT name FROM units WHERE grp = ?)"] * len(self.groups)) or "1 = 1"

    @property
    def params(self) -> list[str]:
        return [*self.units, *self.groups]

    def host_ids_sql(self) -> str:
        """` AND host_id IN (the scope's hosts)` for a table keyed by host_id (nothing for
        every unit); its parameters are `params`."""
        return ("" if self.everything else
                f" AND host_id IN (SELECT id FROM hosts WHERE {self.sql('unit')})")


EVERYTHING = Scope()


@dataclass(frozen=True)
class Identity:
    """Whom a token belongs to: a sensor (with its unit), or a staff account (admin)
    whose scope is one unit, one block, or the whole province."""
    kind: str
    name: str
    unit: str | None = None
    group: str | None = None

    @property
    def scope(self) -> Scope:
        return Scope.of(self.unit, self.group)


@dataclass(frozen=True)
class HostFilter:
    """What the computer list asks for: each given field narrows it. `search` finds an
    IP or MAC address, or an indicator, containing the text."""
    unit: str | None = None
    group: str | None = None
    sensor: str | None = None
    status: str | None = None
    indicator: str | None = None
    search: str | None = None
    since: float | None = None


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
            self._path = Path("/" + unquote(parts.path).lstrip("/"))   # sqlite:////var/…
            if not self._path.name:
                raise StoreError(f"no file in the SQLite URL {url!r} (sqlite:///path/file.db)")
        elif parts.scheme in ("postgresql", "postgres"):
            self.postgres = True
        else:
            raise StoreError(f"database must be sqlite:///PATH or postgresql://…, not {url!r}")
        self._local = threading.local()
        self._day = lru_cache(maxsize=4096)(self._day_uncached)

    @property
    def path(self) -> Path:
        """The SQLite file (a PostgreSQL store has none)."""
        return self._path

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
                    self._execute(statement.replace(ID, serial).replace(
                        MONTHLY, "PARTITION BY RANGE (day)" if self.postgres else ""))
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
        rows = self._execute("SELECT u.name, u.grp, u.code, u.parent, COUNT(s.id), u.informed "
                             "FROM units u LEFT JOIN sensors s ON s.unit = u.name "
                             "GROUP BY u.name, u.grp, u.code, u.parent, u.informed "
                             "ORDER BY u.grp, u.name").fetchall()
        return [{"unit": r[0], "group": r[1], "code": r[2], "parent": r[3], "sensors": r[4],
                 "informed": bool(r[5])} for r in rows]

    def has_unit(self, name: str) -> bool:
        return self._execute("SELECT 1 FROM units WHERE name = ?", (name,)).fetchone() is not None

    # -- tokens ------------------------------------------------------------------------------
    def add_sensor_token(self, sensor_id: str, unit: str, now: float) -> str:
        """Register (or move) a sensor and issue it a new token; returns the token."""
        token = "madoc_" + secrets.token_urlsafe(32)
        with self._transaction():
            self.add_sensor(sensor_id, unit, now)
            self._execute("INSERT INTO tokens (hash, kind, name, created) VALUES "
                          "(?, 'sensor', ?, ?)",
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

    def add_admin_token(self, name: str, now: float, token: str | None = None,
                        unit: str | None = None, group: str | None = None) -> str:
        """Issue a staff token, scoped to one unit or one block when given (both must be
        in the directory); returns the token."""
        if unit is not None and group is not None:
            raise StoreError("an admin token is scoped to a unit or to a block, not both")
        if unit is not None and not self.has_unit(unit):
            raise StoreError(f"unit {unit!r} is not in the unit directory (see `units list`)")
        if group is not None and self._execute("SELECT 1 FROM units WHERE grp = ?",
                                               (group,)).fetchone() is None:
            raise StoreError(f"block {group!r} has no unit in the directory (see `units list`)")
        token = token or "madoc_" + secrets.token_urlsafe(32)
        self._execute("INSERT INTO tokens (hash, kind, name, created, revoked, unit, grp) "
                      "VALUES (?, 'admin', ?, ?, NULL, ?, ?) ON CONFLICT (hash) DO NOTHING",
                      (token_hash(token), name, now, unit, group))
        return token

    def revoke(self, name_or_id: str, now: float) -> int:
        """Revoke the tokens of a sensor or admin name, or one token by its id (hash prefix)."""
        is_id = len(name_or_id) >= 8 and all(c in "0123456789abcdef" for c in name_or_id)
        cursor = self._execute(
            "UPDATE tokens SET revoked = ? WHERE revoked IS NULL AND (name = ? OR hash LIKE ?)",
            (now, name_or_id, name_or_id + "%" if is_id else ""))
        return cursor.rowcount

    def tokens(self) -> list[dict[str, Any]]:
        rows = self._execute("SELECT SUBSTR(t.hash, 1, 12), t.kind, t.name, "
                             "COALESCE(s.unit, t.unit), t.grp, t.created, t.revoked "
                             "FROM tokens t LEFT JOIN sensors s ON t.kind = 'sensor' "
                             "AND s.id = t.name ORDER BY t.kind, t.name, t.created").fetchall()
        return [{"id": r[0], "kind": r[1], "name": r[2], "unit": r[3], "group": r[4],
                 "created": r[5], "revoked": r[6]} for r in rows]

    def authenticate(self, token: str) -> Identity | None:
        """Whom a valid, unrevoked token belongs to; None otherwise."""
        row = self._execute(
            "SELECT t.kind, t.name, COALESCE(s.unit, t.unit), t.grp FROM tokens t "
            "LEFT JOIN sensors s ON t.kind = 'sensor' AND s.id = t.name "
            "WHERE t.hash = ? AND t.revoked IS NULL", (token_hash(token),)).fetchone()
        return Identity(*row) if row else None

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
        self._executemany(_UPSERT_HITS, sorted(
            (host_ids[_identity(c)], day(c["hour"]), c["indicator"], c["indicator_type"],
             c["hits"], c["first"], c["last"]) for c in envelope["counts"]))
        totals: dict[tuple[int, str], list] = {}    # one row per host and indicator
        for c in envelope["counts"]:
            key = (host_ids[_identity(c)], c["indicator"])
            total = totals.get(key)
            if total is None:
                totals[key] = [c["indicator_type"], c["hits"], c["first"], c["last"]]
            else:
                total[1] += c["hits"]
                total[2], total[3] = min(total[2], c["first"]), max(total[3], c["last"])
        self._executemany(_UPSERT_INDICATORS, [(*key, *totals[key]) for key in sorted(totals)])
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
        # `changed` marks the days whose state the report sent upward must send again
        # (a row per sensor: concurrent sensors' batches never wait on one another's).
        self._executemany(
            "INSERT INTO sensor_days (sensor, day, unit, changed) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (sensor, day) DO UPDATE SET unit = excluded.unit, "
            "changed = excluded.changed",
            sorted({(sensor, day(int(epoch) // QUARTER_HOUR * QUARTER_HOUR), unit, now)
                    for epoch in [now] + [a["ts"] for a in alerts]
                    + [r["hour"] for r in envelope["hosts_seen"] + envelope["counts"]
                       + encrypted]}))
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
        """One row per host of the batch: seen span and hit span merged in, and the
        addresses it was seen at; returns ids."""
        spans: dict[str, list] = {}   # identity → [ip, mac, first, last, first_hit, last_hit]
        addresses: dict[tuple[str, str, str], list[float]] = {}   # → [first, last]
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
            seen = addresses.setdefault((identity, row["host_ip"], row["host_mac"] or ""),
                                        [row["first"], row["last"]])
            seen[0], seen[1] = min(seen[0], row["first"]), max(seen[1], row["last"])
        identities = sorted(spans)      # one order for every writer: no deadlocks
        self._executemany(_UPSERT_HOST, [(unit, identity, sensor, *spans[identity])
                                         for identity in identities])
        ids: dict[str, int] = {}
        for start in range(0, len(identities), 500):
            chunk = identities[start:start + 500]
            ids.update(self._execute(
                f"SELECT identity, id FROM hosts WHERE unit = ? AND identity IN "
                f"({', '.join('?' * len(chunk))})", (unit, *chunk)).fetchall())
        self._executemany(_UPSERT_ADDRESSES, sorted(
            (ids[identity], ip, mac, sensor, *span)
            for (identity, ip, mac), span in addresses.items()))
        return ids

    # -- reading ---------------------------------------------------------------------------
    def sensors(self, scope: Scope) -> list[dict[str, Any]]:
        rows = self._execute(f"SELECT id, unit, created, last_seen, batches, alerts, "
                             f"dropped_alerts FROM sensors WHERE {scope.sql('unit')} "
                             f"ORDER BY unit, id", scope.params).fetchall()
        return [{"id": r[0], "unit": r[1], "created": r[2], "last_seen": r[3], "batches": r[4],
                 "alerts": r[5], "dropped_alerts": r[6]} for r in rows]

    def hosts_by_status(self) -> list[tuple[str, str, int]]:
        """(unit, status, hosts), counted in the database."""
        return self._execute(
            f"SELECT q.unit, q.status, COUNT(*) FROM ({_HOST_SQL} WHERE 1 = 1{_HOST_GROUP}) q "
            "GROUP BY q.unit, q.status ORDER BY 1, 2", (self.quiet_seconds,)).fetchall()

    def _host_list_sql(self, scope: Scope, wanted: HostFilter) -> tuple[str, list]:
        """The computer list's query (columns of `Host`, as `q`) and its parameters."""
        scope = scope.narrow(wanted.unit, wanted.group)
        like = None if wanted.search is None else "%" + wanted.search.replace(
            "\\", "\\\\").replace("%", "\\%").replace("_", "\\_").lower() + "%"
        where, params = _where(
            ("h.sensor = ?", wanted.sensor), ("h.last_seen >= ?", wanted.since),
            ("h.id IN (SELECT host_id FROM host_indicators WHERE indicator = ?)",
             wanted.indicator),
            ("(LOWER(h.ip) LIKE ? ESCAPE '\\' OR LOWER(h.mac) LIKE ? ESCAPE '\\' OR h.id IN "
             "(SELECT host_id FROM host_indicators WHERE indicator LIKE ? ESCAPE '\\'))",
             like))
        if like is not None:
            params[-1:] = [like] * 3
        sql = (f"SELECT * FROM ({_HOST_SQL} WHERE {scope.sql('h.unit')} AND {where}"
               f"{_HOST_GROUP}) q WHERE {'q.status = ?' if wanted.status else '1 = 1'}")
        return sql, [self.quiet_seconds, *scope.params, *params,
                     *([wanted.status] if wanted.status else [])]

    def hosts(self, scope: Scope, wanted: HostFilter = HostFilter(), sort: str = "id",
              descending: bool = False, offset: int = 0, limit: int = 1000) -> list[Host]:
        """One page of the computer list: the scope's hosts that `wanted` names, in the
        order of a `HOST_SORTS` column (then by id)."""
        sql, params = self._host_list_sql(scope, wanted)
        order = f"{HOST_SORTS[sort]} {'DESC' if descending else 'ASC'}"
        if sort != "id":
            order += ", q.id"
        rows = self._execute(f"{sql} ORDER BY {order} LIMIT ? OFFSET ?",
                             (*params, limit, offset)).fetchall()
        return [Host(*row) for row in rows]

    def count_hosts(self, scope: Scope, wanted: HostFilter = HostFilter()) -> int:
        sql, params = self._host_list_sql(scope, wanted)
        return self._execute(f"SELECT COUNT(*) FROM ({sql}) c", params).fetchone()[0]

    def host(self, host_id: int, scope: Scope) -> Host | None:
        """A host of the scope; None for an unknown id and for another unit's host alike."""
        row = self._execute(f"{_HOST_SQL} WHERE h.id = ? AND {scope.sql('h.unit')}"
                            f"{_HOST_GROUP}",
                            (self.quiet_seconds, host_id, *scope.params)).fetchone()
        return Host(*row) if row else None

    def host_evidence(self, host: Host, alerts: int = 50) -> HostRows:
        """What the database holds on one host (read by `sensor.collector.evidence`)."""
        execute = self._execute
        hits = execute("SELECT day, indicator, kind, hits, first_ts, last_ts FROM host_hits "
                       "WHERE host_id = ? ORDER BY day, indicator", (host.id,)).fetchall()
        indicators = execute(
            "SELECT indicator, kind, hits, first_ts, last_ts FROM host_indicators "
            "WHERE host_id = ? ORDER BY hits DESC, indicator", (host.id,)).fetchall()
        matches = execute("SELECT DISTINCT indicator, match FROM host_hit_matches "
                          "WHERE host_id = ? ORDER BY 1, 2", (host.id,)).fetchall()
        addresses = execute("SELECT ip, mac, sensor, first_seen, last_seen FROM "
                            "host_addresses WHERE host_id = ? ORDER BY first_seen, ip",
                            (host.id,)).fetchall()
        actions = execute("SELECT ts, action, by_name, note FROM host_actions "
                          "WHERE host_id = ? ORDER BY ts, id", (host.id,)).fetchall()
        identity, data_until = execute(
            "SELECT h.identity, s.data_until FROM hosts h JOIN sensors s ON s.id = h.sensor "
            "WHERE h.id = ?", (host.id,)).fetchone()
        recent = execute(
            "SELECT ts, sensor, indicator, kind, match, seen, sources, campaign, severity, "
            "proto, src_ip, src_port, dest_ip, dest_port, resolved_from FROM alerts "
            "WHERE unit = ? AND host_identity = ? ORDER BY ts DESC LIMIT ?",
            (host.unit, identity, alerts)).fetchall()
        return HostRows(hits, indicators, matches, addresses, actions,
                        [(*r[:6], orjson.loads(r[6]), *r[7:]) for r in recent], data_until)

    def mark_handled(self, host_id: int, by: str, now: float, scope: Scope,
                     note: str = "") -> bool:
        """Mark a host of the scope handled and log who, when and what was done; False
        for an unknown id and for another unit's host alike."""
        with self._transaction():
            cursor = self._execute(
                f"UPDATE hosts SET handled_at = ?, handled_by = ? WHERE id = ? AND "
                f"{scope.sql('unit')}", (now, by, host_id, *scope.params))
            if cursor.rowcount != 1:
                return False
            self._execute("INSERT INTO host_actions (host_id, ts, action, by_name, note) "
                          "VALUES (?, ?, 'handled', ?, ?)", (host_id, now, by, note))
        return True

    def top_indicators(self, scope: Scope, since_day: str | None = None, limit: int = 20,
                       until_day: str | None = None) -> list[dict[str, Any]]:
        where, params = _where(("x.day >= ?", since_day), ("x.day <= ?", until_day))
        rows = self._execute(
            "SELECT x.indicator, x.kind, CAST(SUM(x.hits) AS BIGINT), "
            "COUNT(DISTINCT x.host_id) FROM host_hits x "
            f"JOIN hosts h ON h.id = x.host_id WHERE {scope.sql('h.unit')} AND {where} "
            "GROUP BY x.indicator, x.kind ORDER BY 4 DESC, 3 DESC, 1 LIMIT ?",
            (*scope.params, *params, limit)).fetchall()
        return [{"indicator": r[0], "indicator_type": r[1], "hits": r[2], "hosts": r[3]}
                for r in rows]

    # -- reporting upward: the province's side ----------------------------------------------
    def upstream_value(self, key: str) -> str | None:
        row = self._execute("SELECT value FROM upstream_state WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_upstream_value(self, key: str, value: str) -> None:
        self._execute("INSERT INTO upstream_state VALUES (?, ?) ON CONFLICT (key) DO UPDATE "
                      "SET value = excluded.value", (key, value))

    def changed_days(self, since: float) -> list[str]:
        """The days whose state changed after `since` (collector time): this collector's
        own, and its departments' (see `departments`)."""
        return [r[0] for r in self._execute(
            f"SELECT day FROM sensor_days WHERE changed > ? UNION SELECT day FROM org_days "
            f"WHERE changed > ? AND org IN ({_DEPARTMENTS}) ORDER BY 1",
            (since, since)).fetchall()]

    def day_state(self, day: str) -> DayState:
        """Everything one day's Form 2 figures are counted from: this collector's hosts by
        (unit, identity), its departments' by the key they sent, under their units'
        names here (`department_unit`)."""
        sensors = self._execute(
            f"SELECT unit, sensor FROM sensor_days WHERE day = ? UNION ALL "
            f"SELECT {_BELOW_UNIT}, org || '/' || sensor FROM org_sensor_days WHERE day = ? "
            f"AND org IN ({_DEPARTMENTS}) ORDER BY 1, 2", (day, day)).fetchall()
        active = self._execute("SELECT h.unit, h.identity FROM host_days d JOIN hosts h "
                               "ON h.id = d.host_id WHERE d.day = ? ORDER BY 1, 2",
                               (day,)).fetchall()
        hits = self._execute("SELECT h.unit, h.identity, x.indicator, x.kind, x.hits "
                             "FROM host_hits x JOIN hosts h ON h.id = x.host_id "
                             "WHERE x.day = ? ORDER BY 1, 2, 3", (day,)).fetchall()
        keyed_active = self._execute(
            f"SELECT {_BELOW_UNIT}, host FROM org_host_days WHERE day = ? "
            f"AND org IN ({_DEPARTMENTS}) ORDER BY 1, 2", (day,)).fetchall()
        keyed_hits = self._execute(
            f"SELECT {_BELOW_UNIT}, host, indicator, kind, hits FROM org_host_hits "
            f"WHERE day = ? AND org IN ({_DEPARTMENTS}) ORDER BY 1, 2, 3", (day,)).fetchall()
        return DayState(sensors, active, hits, keyed_active, keyed_hits)

    def departments(self) -> list[str]:
        """The organisations below that are units of this directory too: a department's
        collector reporting to its province. Their units count as sub-units of that unit
        here, in the report and in what goes further up."""
        return [r[0] for r in self._execute(_DEPARTMENTS + " ORDER BY 1").fetchall()]

    def department_directory(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]],
                                             list[tuple]]:
        """The departments' units (named as here, in their department's block, each
        under its parent there or else under the department), their sensors, and their
        hosts' statuses (unit, key, status, ip, mac), for the level above."""
        units = [{"unit": r[0], "group": r[1], "code": r[2], "parent": r[3],
                  "informed": bool(r[4])} for r in self._execute(
            "SELECT o.org || ' / ' || o.unit, d.grp, o.code, CASE WHEN p.unit IS NULL "
            "THEN o.org ELSE o.org || ' / ' || p.unit END, o.informed FROM org_units o "
            "JOIN units d ON d.name = o.org LEFT JOIN org_units p ON p.org = o.org "
            "AND p.unit = o.parent ORDER BY 1").fetchall()]
        sensors = [{"id": r[0], "unit": r[1], "last_seen": r[2]} for r in self._execute(
            f"SELECT org || '/' || sensor, {_BELOW_UNIT}, last_seen FROM org_sensors "
            f"WHERE org IN ({_DEPARTMENTS}) ORDER BY 1").fetchall()]
        hosts = self._execute(
            f"SELECT {_BELOW_UNIT}, host, status, ip, mac FROM org_hosts "
            f"WHERE org IN ({_DEPARTMENTS}) ORDER BY 1, 2").fetchall()
        return units, sensors, hosts

    def status_changes(self) -> list[tuple]:
        """(host id, unit, identity, status, ip, mac) of each host ever hit whose status
        differs from the one last sent upward."""
        return self._execute(
            f"SELECT q.id, q.unit, h.identity, q.status, q.ip, q.mac FROM ({_HOST_SQL} "
            f"WHERE h.last_hit IS NOT NULL{_HOST_GROUP}) q JOIN hosts h ON h.id = q.id "
            f"LEFT JOIN upstream_sent u ON u.host_id = q.id "
            f"WHERE u.status IS NULL OR u.status <> q.status ORDER BY q.id",
            (self.quiet_seconds,)).fetchall()

    def mark_statuses_sent(self, statuses: list[tuple[int, str]]) -> None:
        self._executemany("INSERT INTO upstream_sent VALUES (?, ?) ON CONFLICT (host_id) "
                          "DO UPDATE SET status = excluded.status", statuses)

    # -- reporting upward: the level above's side ---------------------------------------------
    def add_org_token(self, org: str, now: float) -> str:
        """Issue a token for an organisation that reports to this collector."""
        token = "madoc_" + secrets.token_urlsafe(32)
        self._execute("INSERT INTO tokens (hash, kind, name, created) VALUES (?, 'org', ?, ?)",
                      (token_hash(token), org, now))
        return token

    def ingest_upstream(self, org: str, envelope: dict[str, Any], now: float) -> bool:
        """Store one organisation's batch once (False: stored before). A day batch
        replaces everything the organisation sent for that day; a status batch replaces
        its unit directory and updates its hosts' statuses."""
        if self.postgres and envelope["kind"] == "day":
            with self._transaction():       # apart: the locks it takes last a moment
                self.month_partitions(envelope["day"])
        with self._transaction():
            fresh = self._execute(
                "INSERT INTO batches VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING "
                "RETURNING sequence",
                (f"org:{org}", envelope["stream"], envelope["sequence"], now)).fetchone()
            if fresh is None:
                return False
            if envelope["kind"] == "day":
                self._replace_org_day(org, envelope)
                self._execute("INSERT INTO org_days VALUES (?, ?, ?) ON CONFLICT (org, day) "
                              "DO UPDATE SET changed = excluded.changed",
                              (org, envelope["day"], now))
                return True
            for table in ("org_units", "org_sensors"):
                self._execute(f"DELETE FROM {table} WHERE org = ?", (org,))
            self._executemany("INSERT INTO org_units VALUES (?, ?, ?, ?, ?, ?)",
                              [(org, u["unit"], u["group"], u["code"], u["parent"],
                                int(u["informed"])) for u in envelope["directory"]])
            self._executemany("INSERT INTO org_sensors VALUES (?, ?, ?, ?)",
                              [(org, s["id"], s["unit"], s["last_seen"])
                               for s in envelope["sensors"]])
            self._executemany(
                "INSERT INTO org_hosts VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (org, unit, host) "
                "DO UPDATE SET status = excluded.status, ip = excluded.ip, mac = excluded.mac",
                [(org, *row) for row in envelope["hosts"]])
            return True

    def _replace_org_day(self, org: str, envelope: dict[str, Any]) -> None:
        """An organisation's day replaces what it sent for that day before, and its
        computers of the month follow: added to when the day lost no computer (the
        usual case, a day sent for the first time or again), else counted anew from the
        month's days."""
        day = envelope["day"]
        month = day[:7]
        if self.postgres:
            self._execute("SELECT pg_advisory_xact_lock(hashtext(?))", (f"{org}/{month}",))
        self._execute("DELETE FROM org_sensor_days WHERE org = ? AND day = ?", (org, day))
        before = [{(unit, host) for unit, host in self._execute(
            f"DELETE FROM {table} WHERE org = ? AND day = ? RETURNING unit, host",
            (org, day)).fetchall()} for table in ("org_host_days", "org_host_hits")]
        self._executemany("INSERT INTO org_sensor_days VALUES (?, ?, ?, ?)",
                          [(org, day, *row) for row in envelope["sensors"]])
        self._executemany("INSERT INTO org_host_days VALUES (?, ?, ?, ?)",
                          [(org, day, *row) for row in envelope["hosts"]])
        self._executemany("INSERT INTO org_host_hits VALUES (?, ?, ?, ?, ?, ?, ?)",
                          [(org, day, *row) for row in envelope["hits"]])
        active = {(unit, host) for unit, host in envelope["hosts"]}
        hit = {(row[0], row[1]) for row in envelope["hits"]}
        if before[0] <= active and before[1] <= hit:
            for table, flag in (("org_host_days", "active"), ("org_host_hits", "hit")):
                self._execute(
                    f"INSERT INTO org_host_months SELECT DISTINCT org, ?, unit, host, "
                    f"{int(flag == 'active')}, {int(flag == 'hit')} FROM {table} "
                    f"WHERE org = ? AND day = ? "
                    f"ON CONFLICT (org, month, unit, host) DO UPDATE SET {flag} = 1",
                    (month, org, day))
            return
        first = date.fromisoformat(day).replace(day=1)
        last = next_month(first) - timedelta(days=1)
        self._execute("DELETE FROM org_host_months WHERE org = ? AND month = ?", (org, month))
        self._execute("INSERT INTO org_host_months " + _MONTH_ROWS.format(
            where="WHERE org = ? AND day BETWEEN ? AND ?"),
            (org, first.isoformat(), last.isoformat()) * 2)

    def _org_hosts_sql(self, org: str, first_day: str, last_day: str, hit: bool
                       ) -> tuple[str, tuple]:
        """A query of the distinct (unit, host) an organisation sent as active (or hit)
        in the period: its whole months from org_host_months, the days at either end
        from the day table."""
        table = "org_host_hits" if hit else "org_host_days"
        by_day = f"SELECT unit, host FROM {table} WHERE org = ? AND day BETWEEN ? AND ?"
        months, edges = month_split(first_day, last_day)
        if months is None:
            return f"SELECT DISTINCT unit, host FROM {table} WHERE org = ? AND day BETWEEN ? " \
                   f"AND ?", (org, first_day, last_day)
        parts = [f"SELECT unit, host FROM org_host_months WHERE org = ? AND month BETWEEN ? "
                 f"AND ? AND {'hit' if hit else 'active'} = 1", *(by_day for _ in edges)]
        params = (org, *months, *(value for edge in edges for value in (org, *edge)))
        return " UNION ".join(parts), params

    def month_partitions(self, day: str) -> None:
        """PostgreSQL: the partitions of `day`'s month of the host-day tables, made when
        first needed (under a lock: several collectors may share the database)."""
        first = date.fromisoformat(day).replace(day=1)
        after = next_month(first)
        for table in ("org_host_days", "org_host_hits"):
            name = f"{table}_{first:%Y_%m}"
            self._execute("SELECT pg_advisory_xact_lock(hashtext(?))", (name,))
            self._execute(f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF {table} "
                          f"FOR VALUES FROM ('{first}') TO ('{after}')")

    def orgs(self) -> list[str]:
        """The organisations that report to this collector (a token or data)."""
        return [r[0] for r in self._execute(
            "SELECT name FROM tokens WHERE kind = 'org' UNION SELECT org FROM org_units "
            "ORDER BY 1").fetchall()]

    def org_indicators(self, first_day: str, last_day: str, limit: int = 20) -> list[tuple]:
        """(indicator, kind, organisations, computers, hits) of the indicators hit in the
        period across the organisations below, the most widespread first."""
        return self._execute(
            "SELECT indicator, MIN(kind), COUNT(DISTINCT org), "
            "COUNT(DISTINCT org || '/' || unit || '/' || host), CAST(SUM(hits) AS BIGINT) "
            "FROM org_host_hits WHERE day BETWEEN ? AND ? GROUP BY indicator "
            "ORDER BY 3 DESC, 4 DESC, 5 DESC, 1 LIMIT ?", (first_day, last_day, limit)).fetchall()

    def org_daily(self, first_day: str, last_day: str) -> list[tuple]:
        """(day, hits, computers hit) across the organisations below."""
        return self._execute(
            "SELECT day, CAST(SUM(hits) AS BIGINT), "
            "COUNT(DISTINCT org || '/' || unit || '/' || host) FROM org_host_hits "
            "WHERE day BETWEEN ? AND ? GROUP BY day ORDER BY day",
            (first_day, last_day)).fetchall()

    def org_report_rows(self, org: str, first_day: str, last_day: str) -> ReportRows:
        """An organisation's report rows for the period, counted from what it sent, in
        the shape of `report_rows` (no addresses: its hosts are keyed hashes)."""
        days = (org, first_day, last_day)
        units = self._execute(
            "SELECT u.unit, u.grp, u.informed, EXISTS (SELECT 1 FROM org_sensor_days d "
            "WHERE d.org = u.org AND d.unit = u.unit AND d.day BETWEEN ? AND ?), u.parent "
            "FROM org_units u WHERE u.org = ? ORDER BY u.grp, u.unit",
            (first_day, last_day, org)).fetchall()
        sensors = self._execute(
            "SELECT s.sensor, s.unit, s.last_seen, EXISTS (SELECT 1 FROM org_sensor_days d "
            "WHERE d.org = s.org AND d.sensor = s.sensor AND d.day BETWEEN ? AND ?) "
            "FROM org_sensors s WHERE s.org = ? ORDER BY s.unit, s.sensor",
            (first_day, last_day, org)).fetchall()
        active, active_params = self._org_hosts_sql(org, first_day, last_day, hit=False)
        covered = self._execute(f"SELECT c.unit, COUNT(*) FROM ({active}) c GROUP BY c.unit",
                                active_params).fetchall()
        hit, hit_params = self._org_hosts_sql(org, first_day, last_day, hit=True)
        found = self._execute(
            f"SELECT f.unit, COUNT(*), SUM(CASE WHEN s.status = 'handled' THEN 1 ELSE 0 END) "
            f"FROM ({hit}) f LEFT JOIN org_hosts s ON s.org = ? AND s.unit = f.unit "
            f"AND s.host = f.host GROUP BY f.unit", (*hit_params, org)).fetchall()
        indicators = self._execute(
            """SELECT r.unit, r.indicator, r.kind, r.hits, r.hosts FROM (
                SELECT unit, indicator, MIN(kind) AS kind, CAST(SUM(hits) AS BIGINT) AS hits,
                    COUNT(DISTINCT host) AS hosts, ROW_NUMBER() OVER (PARTITION BY unit
                    ORDER BY COUNT(DISTINCT host) DESC, SUM(hits) DESC, indicator) AS rank
                FROM org_host_hits WHERE org = ? AND day BETWEEN ? AND ?
                GROUP BY unit, indicator) r WHERE r.rank <= 10 ORDER BY r.unit, r.rank""",
            days).fetchall()
        return ReportRows(units, sensors, covered, [(u, n, h or 0) for u, n, h in found], [],
                          indicators, [], [], [])

    # -- the campaign report ---------------------------------------------------------------
    def report_rows(self, first_day: str, last_day: str, scope: Scope, top: int = 10,
                    infected_limit: int = 1000) -> ReportRows:
        """Everything the report forms need for the days first_day..last_day (ISO dates,
        inclusive), counted in the database, for the scope's units."""
        scope_params = scope.params
        # host_days and host_hits rows of the scope's hosts only, chosen before grouping
        hosts = scope.host_ids_sql()
        days = (first_day, last_day)
        units = self._execute(
            f"SELECT u.name, u.grp, u.informed, EXISTS (SELECT 1 FROM sensor_days d WHERE "
            f"d.unit = u.name AND d.day BETWEEN ? AND ?), u.parent FROM units u "
            f"WHERE {scope.sql('u.name')} ORDER BY u.grp, u.name",
            (*days, *scope_params)).fetchall()
        sensors = self._execute(
            f"SELECT s.id, s.unit, s.last_seen, EXISTS (SELECT 1 FROM sensor_days d WHERE "
            f"d.sensor = s.id AND d.day BETWEEN ? AND ?) FROM sensors s "
            f"WHERE {scope.sql('s.unit')} ORDER BY s.unit, s.id", (*days, *scope_params)).fetchall()
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
        start, end = (datetime.combine(date.fromisoformat(day), time(), self.tz).timestamp()
                      for day in (first_day, (date.fromisoformat(last_day)
                                              + timedelta(days=1)).isoformat()))
        actions = self._execute(
            f"""SELECT h.unit, h.id, h.ip, h.mac, a.ts, a.action, a.by_name, a.note
                FROM host_actions a JOIN hosts h ON h.id = a.host_id
                WHERE a.ts >= ? AND a.ts < ? AND {scope.sql('h.unit')}
                ORDER BY h.unit, a.ts, a.id LIMIT ?""",
            (start, end, *scope_params, infected_limit)).fetchall()
        return ReportRows(units, sensors, covered, found, infected, indicators, encrypted,
                          matches, actions)

    def daily_rows(self, first_day: str, last_day: str, scope: Scope) -> DailyRows:
        """What the campaign's charts draw for the days first_day..last_day, for the
        scope's units (see sensor.collector.charts)."""
        days = (first_day, last_day)
        hosts = scope.host_ids_sql()
        hits = self._execute(
            f"SELECT day, CAST(SUM(hits) AS BIGINT) FROM host_hits WHERE day BETWEEN ? AND ?"
            f"{hosts} GROUP BY day ORDER BY day", (*days, *scope.params)).fetchall()
        host_days = self._execute(
            f"SELECT x.host_id, x.day, MIN(x.first_ts), MAX(x.last_ts), s.data_until "
            f"FROM host_hits x JOIN hosts h ON h.id = x.host_id JOIN sensors s "
            f"ON s.id = h.sensor WHERE x.day BETWEEN ? AND ? AND {scope.sql('h.unit')} "
            f"GROUP BY x.host_id, x.day, s.data_until ORDER BY x.host_id, x.day",
            (*days, *scope.params)).fetchall()
        marks = self._execute(
            f"SELECT a.host_id, a.ts, a.by_name FROM host_actions a JOIN hosts h "
            f"ON h.id = a.host_id WHERE a.action = 'handled' AND {scope.sql('h.unit')} "
            f"AND a.host_id IN (SELECT host_id FROM host_hits WHERE day BETWEEN ? AND ?) "
            f"ORDER BY a.host_id, a.ts", (*scope.params, *days)).fetchall()
        deployed = self._execute(
            f"SELECT unit, MIN(day) FROM sensor_days WHERE day <= ? AND {scope.sql('unit')} "
            f"GROUP BY unit", (last_day, *scope.params)).fetchall()
        return DailyRows(hits, host_days, marks, deployed)

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
    units: list[tuple]          # (unit, group, informed, deployed, parent unit or None)
    sensors: list[tuple]        # (id, unit, last_seen, reported in the period)
    covered: list[tuple]        # (unit, distinct hosts active)
    found: list[tuple]          # (unit, distinct hosts hit, of which handled now)
    infected: list[tuple]       # (unit, host id, ip, mac, sensor, last hit, hits in period)
    indicators: list[tuple]     # (unit, indicator, kind, hits, hosts), top N per unit
    encrypted_dns: list[tuple]  # (unit, host id, ip, mac, sensor, kind, server, flows)
    matches: list[tuple]        # (unit, indicator, match point) of the top indicators
    actions: list[tuple]        # (unit, host id, ip, mac, ts, action, by, note) in the period


@dataclass
class DayState:
    """One day of a collector's data, as the level above needs it (see
    sensor.collector.upstream)."""
    sensors: list[tuple]        # (unit, sensor) that reported
    active: list[tuple]         # (unit, host identity) seen active
    hits: list[tuple]           # (unit, host identity, indicator, kind, hits)
    keyed_active: list[tuple] = field(default_factory=list)   # departments': (unit, key)
    keyed_hits: list[tuple] = field(default_factory=list)     # (unit, key, indicator, …)


@dataclass
class DailyRows:
    """The charts' raw rows (see sensor.collector.charts)."""
    hits: list[tuple]           # (day, hits)
    host_days: list[tuple]      # (host id, day, first hit, last hit, its sensor's data_until)
    marks: list[tuple]          # (host id, ts, by) of the hosts hit in the period
    deployed: list[tuple]       # (unit, first day a sensor of it reported)


@dataclass
class HostRows:
    """What the database holds on one host (see sensor.collector.evidence)."""
    hits: list[tuple]           # (day, indicator, kind, hits, first ts, last ts)
    indicators: list[tuple]     # (indicator, kind, hits, first ts, last ts), all time
    matches: list[tuple]        # (indicator, match point)
    addresses: list[tuple]      # (ip, mac or '', sensor, first seen, last seen)
    actions: list[tuple]        # (ts, action, by, note): the audit log
    alerts: list[tuple]         # newest first: ts, sensor, indicator, kind, match, seen,
    #                             sources, campaign, severity, proto, src_ip, src_port,
    #                             dest_ip, dest_port, resolved_from
    data_until: float | None    # the latest event its sensor reported


def next_month(day: date) -> date:
    """The first day of the month after `day`'s."""
    return (day.replace(day=1) + timedelta(days=32)).replace(day=1)


def month_split(first_day: str, last_day: str
                ) -> tuple[tuple[str, str] | None, list[tuple[str, str]]]:
    """The whole months inside the days first_day..last_day, as (first, last) `YYYY-MM`
    (None when there is none), and the day ranges left at either end."""
    first, last = date.fromisoformat(first_day), date.fromisoformat(last_day)
    start = first if first.day == 1 else next_month(first)
    after = (last + timedelta(days=1)).replace(day=1)      # the first day not whole
    if start >= after:
        return None, [(first_day, last_day)]
    edges = []
    if first < start:
        edges.append((first_day, (start - timedelta(days=1)).isoformat()))
    if after <= last:
        edges.append((after.isoformat(), last_day))
    return (f"{start:%Y-%m}", f"{after - timedelta(days=1):%Y-%m}"), edges


def _identity(row: dict[str, Any]) -> str:
    """A host is its MAC address when the sensor knows it, else its IP address."""
    mac = row["host_mac"]
    return f"mac:{mac}" if mac else f"ip:{row['host_ip']}"


def _where(*conditions: tuple[str, object]) -> tuple[str, list]:
    """A WHERE clause of the conditions whose value is given, and their parameters."""
    given = [(clause, value) for clause, value in conditions if value is not None]
    return " AND ".join(clause for clause, _ in given) or "1 = 1", [v for _, v in given]

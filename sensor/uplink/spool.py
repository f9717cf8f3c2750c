"""The sensor's on-disk queue of batches for the collector (one SQLite file).

Every batch gets the next `sequence` of this spool's `stream` (a random id made
with the spool file), so `(sensor, stream, sequence)` names it for ever: the
collector stores each name once, and a batch re-sent after a lost answer or a
restart is not counted twice. A new spool file starts a new stream, so its
sequence numbers never collide with an old one's.

Writes are synchronous (`PRAGMA synchronous=FULL`): a batch the spool has
accepted survives a power cut. Batches leave in sequence order, and only
after the collector has acknowledged them.

When the spool outgrows `max_bytes`, the oldest batches that were never sent
(all but the head, which may be in flight) are merged: their per-host counts
are summed, their alerts dropped and counted, so the numbers the report needs
survive any outage.

A collector reporting upward uses the same spool for its own batches (`source="org"`,
`mergeable=False`): they name the organisation instead of a sensor and are never
merged, each one carrying a whole day's state that replaces the last one sent.
"""

from __future__ import annotations

import gzip
import os
import secrets
import sqlite3
import threading
from pathlib import Path

import orjson

from sensor.uplink.batch import Batch, merge_batches

DEFAULT_MAX_BYTES = 256 << 20
_SCHEMA = """
CREATE TABLE IF NOT EXISTS batch (sequence INTEGER PRIMARY KEY, body BLOB NOT NULL,
                                  alerts INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rejected (sequence INTEGER PRIMARY KEY, body BLOB NOT NULL,
                                     reason TEXT NOT NULL);
"""


def encode(envelope: dict) -> bytes:
    return gzip.compress(orjson.dumps(envelope), compresslevel=6, mtime=0)


def decode(body: bytes) -> dict:
    return orjson.loads(gzip.decompress(body))


class Spool:
    """Thread-safe: the pipeline appends while the uplink thread sends."""

    def __init__(self, path: Path, sensor_id: str, max_bytes: int = DEFAULT_MAX_BYTES,
                 source: str = "sensor", mergeable: bool = True) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.sensor_id = sensor_id
        self.max_bytes = max_bytes
        self.source = source            # the envelope's field naming who sends
        self.mergeable = mergeable
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        os.chmod(path, 0o600)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        with self._transaction():
            self.stream = self._meta("stream") or self._set_meta("stream", secrets.token_hex(16))
            owner = self._meta("sensor") or self._set_meta("sensor", sensor_id)
        if owner != sensor_id:
            what = "sensor" if source == "sensor" else "organisation"
            raise ValueError(f"{path} is the spool of {what} {owner!r}, not {sensor_id!r}: "
                             f"another {what} uses this file (give each instance its own "
                             f"state directory or spool), or the {what}'s name changed "
                             f"(send or move the spool first)")
        self.bytes, self.depth = self._size()
        self.last_appended = 0          # the newest sequence this process spooled

    def _transaction(self):
        db = self._db

        class _Tx:
            def __enter__(self_inner):
                db.execute("BEGIN IMMEDIATE")

            def __exit__(self_inner, kind, value, tb):
                db.execute("COMMIT" if kind is None else "ROLLBACK")
        return _Tx()

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def _set_meta(self, key: str, value: str) -> str:
        self._db.execute("INSERT INTO meta VALUES (?, ?) ON CONFLICT (key) DO UPDATE "
                         "SET value = excluded.value", (key, value))
        return value

    def _size(self) -> tuple[int, int]:
        size, depth = self._db.execute(
            "SELECT COALESCE(SUM(LENGTH(body)), 0), COUNT(*) FROM batch").fetchone()
        return size, depth

    def checkpoint(self, key: str) -> tuple[int, bool]:
        """(batches spooled so far, finished) for a back-fill named `key`."""
        with self._lock:
            count = self._meta(f"{key}:batches")
            return int(count or 0), self._meta(f"{key}:done") is not None

    def reset_checkpoint(self, key: str) -> None:
        with self._lock, self._transaction():
            self._db.execute("DELETE FROM meta WHERE key IN (?, ?)",
                             (f"{key}:batches", f"{key}:done"))

    def append(self, batches: list[Batch], checkpoint: str | None = None,
               finished: bool = False) -> None:
        """Queue `batches` in one transaction, with the back-fill checkpoint if named."""
        with self._lock, self._transaction():
            sequence = int(self._meta("next_sequence") or 1)
            for batch in batches:
                envelope = {self.source: self.sensor_id, "stream": self.stream,
                            "sequence": sequence, **batch}
                body = encode(envelope)
                self._db.execute("INSERT INTO batch VALUES (?, ?, ?)",
                                 (sequence, body, len(batch.get("alerts", ()))))
                self.bytes += len(body)
                self.depth += 1
                sequence += 1
            self._set_meta("next_sequence", str(sequence))
            self.last_appended = sequence - 1
            if checkpoint is not None:
                done = int(self._meta(f"{checkpoint}:batches") or 0)
                self._set_meta(f"{checkpoint}:batches", str(done + len(batches)))
                if finished:
                    self._set_meta(f"{checkpoint}:done", "1")
            if self.bytes > self.max_bytes and self.mergeable:
                self._compact()

    def _compact(self) -> None:
        """Merge the oldest unsent batches (not the head) until under the cap."""
        rows = self._db.execute("SELECT sequence, body FROM batch ORDER BY sequence "
                                "LIMIT -1 OFFSET 1").fetchall()
        freed, victims = 0, []
        for sequence, body in rows[:-1]:      # keep the newest: it was just accepted
            victims.append((sequence, body))
            freed += len(body)
            if self.bytes - freed <= self.max_bytes // 2 and len(victims) > 1:
                break
        if len(victims) < 2:
            return
        decoded = [decode(body) for _, body in victims]
        merged = merge_batches(decoded)
        first = victims[0][0]
        envelope = {"sensor": self.sensor_id, "stream": self.stream, "sequence": first,
                    **merged}
        body = encode(envelope)
        self._db.executemany("DELETE FROM batch WHERE sequence = ?",
                             [(sequence,) for sequence, _ in victims])
        self._db.execute("INSERT INTO batch VALUES (?, ?, 0)", (first, body))
        dropped = int(self._meta("dropped_alerts") or 0)
        self._set_meta("dropped_alerts",
                       str(dropped + sum(len(batch["alerts"]) for batch in decoded)))
        self.bytes, self.depth = self._size()

    def waiting(self) -> int:
        """Batches this process spooled that are still in the file (all it holds, when
        this process spooled none): what its sender waits for before it stops. Counted
        in the file, since another process on the same spool (the daemon, and `replay
        -c` as the same sensor) sends and acknowledges batches too, and keeps adding
        its own."""
        with self._lock:
            (count,) = self._db.execute(
                "SELECT COUNT(*) FROM batch WHERE ? = 0 OR sequence <= ?",
                (self.last_appended, self.last_appended)).fetchone()
            return count

    @property
    def dropped_alerts(self) -> int:
        with self._lock:
            return int(self._meta("dropped_alerts") or 0)

    def head(self) -> tuple[int, bytes] | None:
        """The oldest batch: (sequence, gzip-compressed JSON body)."""
        with self._lock:
            return self._db.execute(
                "SELECT sequence, body FROM batch ORDER BY sequence LIMIT 1").fetchone()

    def ack(self, sequence: int) -> None:
        """The collector has stored batch `sequence`: forget it."""
        with self._lock, self._transaction():
            self._forget(sequence)

    def _forget(self, sequence: int) -> None:
        row = self._db.execute("DELETE FROM batch WHERE sequence = ? RETURNING LENGTH(body)",
                               (sequence,)).fetchone()
        if row is not None:
            self.bytes -= row[0]
            self.depth -= 1

    def reject(self, sequence: int, reason: str) -> None:
        """The collector refused batch `sequence` as invalid: keep it aside, unsent."""
        with self._lock, self._transaction():
            self._db.execute("INSERT OR REPLACE INTO rejected SELECT sequence, body, ? "
                             "FROM batch WHERE sequence = ?", (reason, sequence))
            self._forget(sequence)

    def close(self) -> None:
        with self._lock:
            self._db.close()

"""Reporting upward: a collector (a province's) sends the level above (the nation's)
what its report needs, through the same spool and uplink a sensor uses.

What leaves, per day whose data changed since it was last sent: the sensors that
reported (by unit), the hosts active, and the hosts' hits per indicator; and, whenever
any changed, the unit directory with its sensors and each hit host's status now. A
host is named by a keyed hash of its unit and identity (HMAC-SHA256 with a secret that
never leaves this collector), so the level above counts distinct computers over any
period exactly while no IP or MAC address leaves; `share: {addresses: true}` adds the
addresses to the statuses, for an organisation that chooses to send them.

A day batch carries the day's whole state and replaces what was sent for that day
before, so sending a day again (after a new late batch from a sensor, or after a crash
between spooling and bookkeeping) changes nothing twice. The spool names each batch
(organisation, stream, sequence) and the level above stores each name once.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from pathlib import Path
from typing import Any

import orjson

from sensor.collector.config import ConfigError, UpstreamSettings
from sensor.collector.store import EVERYTHING, Store
from sensor.support.paths import create_secret_file
from sensor.uplink.sender import Uplink, UplinkConfig, UplinkError
from sensor.uplink.spool import Spool

log = logging.getLogger("madoc.upstream")
UPSTREAM_PATH = "/api/v1/upstream"
WATERMARK = "days_sent_until"       # collector time up to which changed days were spooled
DIRECTORY = "directory_sent"        # a digest of the directory last spooled


def load_secret(path: str, sent_before: bool = False) -> bytes:
    """The keyed-hash secret, made (32 random bytes, mode 0600) when the file is missing
    and nothing was sent upward yet. Rotating it (a new file) changes every host's name
    upstream from then on, so a missing file for a database that has already reported
    upward is refused rather than replaced: most often it is the wrong path, or a
    restore without the secret."""
    file = Path(path)
    if not file.exists() and sent_before:
        raise ConfigError(
            f"upstream.secret_file {file} is missing, but this database has already "
            f"reported upward under a secret: a new one would rename every computer above "
            f"and count each twice. Restore the file (it is kept with the database's "
            f"backups), or to rotate on purpose write a new one: "
            f"openssl rand -hex 32 > {file} (docs/collector.md, \"Reporting upward\")")
    if not file.exists():
        create_secret_file(file, secrets.token_hex(32))
        log.warning("wrote a new upstream secret to %s (keep it: hosts' names upstream "
                    "depend on it)", file)
    text = file.read_text(encoding="ascii").strip()
    if len(text) < 32:
        raise ConfigError(f"upstream secret {file} is shorter than 32 characters")
    return text.encode()


def host_key(secret: bytes, unit: str, identity: str) -> str:
    """A host's name upstream: stable for the secret, unlinkable to its address without it."""
    return hmac.new(secret, f"{unit}\n{identity}".encode(), hashlib.sha256).hexdigest()[:32]


def build_batches(store: Store, secret: bytes, share_addresses: bool,
                  now: float) -> tuple[list[dict[str, Any]], float, list[tuple[int, str]], str]:
    """The batches for what changed since the last build, and what to record once they
    are spooled: the new watermark, the statuses sent, the directory's digest."""
    since = float(store.upstream_value(WATERMARK) or 0)
    batches: list[dict[str, Any]] = []
    for day in store.changed_days(since):
        state = store.day_state(day)
        batches.append({
            "kind": "day", "day": day, "sensors": [list(row) for row in state.sensors],
            "hosts": [[unit, host_key(secret, unit, identity)]
                      for unit, identity in state.active]
                     + [list(row) for row in state.keyed_active],
            "hits": [[unit, host_key(secret, unit, identity), indicator, kind, hits]
                     for unit, identity, indicator, kind, hits in state.hits]
                    + [list(row) for row in state.keyed_hits]})
    changes = store.status_changes()
    # A department's units, sensors and hosts go up as they arrived from it (its hosts
    # already keyed, its addresses only if it shared them): all of them whenever any
    # changed, which the digest tells.
    below_units, below_sensors, below_hosts = store.department_directory()
    directory = [{"unit": u["unit"], "group": u["group"], "code": u["code"],
                  "parent": u["parent"], "informed": u["informed"]}
                 for u in store.units()] + below_units
    sensors = [{"id": s["id"], "unit": s["unit"], "last_seen": s["last_seen"]}
               for s in store.sensors(EVERYTHING)] + below_sensors
    below_statuses = [[unit, key, status, ip if share_addresses else None,
                       mac if share_addresses else None]
                      for unit, key, status, ip, mac in below_hosts]
    digest = hashlib.sha256(orjson.dumps([directory, sensors, below_statuses])).hexdigest()
    if changes or digest != store.upstream_value(DIRECTORY):
        batches.append({
            "kind": "status", "directory": directory, "sensors": sensors,
            "hosts": [[unit, host_key(secret, unit, identity), status,
                       ip if share_addresses else None, mac if share_addresses else None]
                      for _id, unit, identity, status, ip, mac in changes]
                     + below_statuses})
    return batches, now, [(host_id, status) for host_id, _u, _i, status, _ip, _m in changes], \
        digest


def spool_pending(store: Store, spool: Spool, secret: bytes, share_addresses: bool,
                  now: float) -> int:
    """Spool what changed since the last build; returns how many batches. The
    bookkeeping is written after the spool has the batches: a crash in between sends
    the same days again, which replaces them upstream."""
    batches, watermark, statuses, digest = build_batches(store, secret, share_addresses, now)
    if batches:
        spool.append(batches)
    store.set_upstream_value(WATERMARK, repr(watermark))
    store.mark_statuses_sent(statuses)
    store.set_upstream_value(DIRECTORY, digest)
    return len(batches)


class Upstream:
    """This collector's reporting to the level above: build, spool, send."""

    def __init__(self, settings: UpstreamSettings, store: Store) -> None:
        self.settings = settings
        self.store = store
        try:
            token = Path(settings.token_file).read_text(encoding="ascii").strip()
        except OSError as err:
            raise ConfigError(f"upstream.token_file {settings.token_file}: "
                              f"{err.strerror}") from err
        try:
            self.uplink_config = UplinkConfig(settings.url, token, settings.ca_file,
                                              settings.insecure, path=UPSTREAM_PATH)
        except UplinkError as err:
            raise ConfigError(f"upstream: {err}") from err
        try:        # before the secret: a refused start makes nothing new
            self.spool = Spool(Path(settings.spool), settings.org, max_bytes=1 << 40,
                               source="org", mergeable=False)
        except (ValueError, OSError) as err:
            raise ConfigError(f"upstream.spool: {err}") from err
        self.secret = load_secret(settings.secret_file,
                                  sent_before=store.upstream_value(WATERMARK) is not None)
        self.uplink = Uplink(self.uplink_config, self.spool)

    def spool_pending(self) -> int:
        return spool_pending(self.store, self.spool, self.secret,
                             self.settings.share_addresses, time.time())

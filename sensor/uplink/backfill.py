"""`replay --collector`: a capture's findings sent through the uplink, exactly once.

Batches are cut by the event stream alone (see `batch.py`), so replaying the
same captures always yields the same batches. The spool remembers, per set of
captures, how many batches it has accepted, in the same transaction as the
batches themselves; a back-fill that was killed skips those on its next run and
continues with the first batch it had not spooled. A back-fill that finished
is not sent again unless asked (`--resend`).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from sensor.support.paths import state_directory
from sensor.uplink.batch import BatchBuilder
from sensor.uplink.channel import Channel, open_spool, read_token
from sensor.uplink.sender import UplinkConfig, UplinkError, client_ssl
from sensor.uplink.spool import DEFAULT_MAX_BYTES


@dataclass
class BackfillOptions:
    url: str
    token_file: Path
    sensor_id: str | None = None          # asked of the collector when not given
    spool: Path | None = None
    ca_file: str | None = None
    insecure: bool = False
    drain_timeout: float = 120.0
    resend: bool = False
    spool_max_bytes: int = DEFAULT_MAX_BYTES
    max_alerts: int = 500
    max_age: float = 10.0
    backoff_max: float = 60.0


def backfill_key(captures: Iterable[Path]) -> str:
    """Names a set of captures by path, size and modification time."""
    digest = hashlib.sha256()
    for path in captures:
        try:
            stat = path.stat()
            stamp = f"{stat.st_size}\0{stat.st_mtime_ns}"
        except OSError:
            stamp = "missing"       # replay reports it; the key only has to be stable
        digest.update(f"{path.resolve()}\0{stamp}\n".encode())
    return "backfill:" + digest.hexdigest()[:32]


def ask_identity(config: UplinkConfig) -> tuple[str, str]:
    """(sensor id, unit) that the collector has for this token."""
    async def ask() -> tuple[str, str]:
        connector = aiohttp.TCPConnector(ssl=client_ssl(config) or False)
        timeout = aiohttp.ClientTimeout(total=config.timeout)
        headers = {"Authorization": f"Bearer {config.token}"}
        async with (aiohttp.ClientSession(connector=connector, timeout=timeout) as session,
                    session.get(f"{config.url}/api/v1/identity", headers=headers) as answer):
            doc = await answer.json(content_type=None)
            if answer.status != 200:
                raise UplinkError(f"collector says {answer.status}: "
                                  f"{doc.get('error', '') if isinstance(doc, dict) else ''}")
        if doc.get("kind") != "sensor":
            raise UplinkError("this is not a sensor token (an admin token cannot post events)")
        return doc["name"], doc["unit"]
    try:
        return asyncio.run(ask())
    except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as err:
        if isinstance(err, UplinkError):
            raise
        raise UplinkError(f"cannot reach the collector at {config.url} to learn this token's "
                          f"sensor id ({type(err).__name__}: {err}); give --sensor-id to "
                          f"spool now and send later") from err


class Backfill:
    """Events in, batches spooled and sent in the background."""

    def __init__(self, options: BackfillOptions, captures: list[Path],
                 is_internal: Callable[[bytes], bool],
                 say: Callable[[str], None]) -> None:
        config = UplinkConfig(options.url, read_token(options.token_file),
                              ca_file=options.ca_file, insecure=options.insecure,
                              backoff_max=options.backoff_max)
        sensor_id = options.sensor_id
        if sensor_id is None:
            sensor_id, unit = ask_identity(config)
            say(f"uplink: sending as sensor {sensor_id!r} (unit {unit})")
        path = options.spool or state_directory() / f"spool-{sensor_id}.db"
        self.spool = open_spool(path, sensor_id, options.spool_max_bytes)
        self.key = backfill_key(captures)
        self.options = options
        self.say = say
        self.builder = BatchBuilder(is_internal, max_alerts=options.max_alerts,
                                    max_age=options.max_age)
        done_before, finished = self.spool.checkpoint(self.key)
        self.sending = True
        if finished and not options.resend:
            say(f"uplink: these captures were already sent to the collector; not sending "
                f"them again (--resend to send anyway). Spool: {path}")
            self.sending = False
        elif options.resend:
            self.spool.reset_checkpoint(self.key)
            done_before = 0
        elif done_before:
            say(f"uplink: resuming a back-fill that was interrupted: the first {done_before} "
                f"batches were spooled before and are skipped")
        self.skip = done_before
        self.produced = 0
        self.channel = Channel(config, self.spool, say)

    def add(self, events: list) -> None:
        if self.sending:
            self.builder.add(events)
            self._spool(finished=False)

    def _spool(self, finished: bool) -> None:
        fresh = []
        for batch in self.builder.take():
            self.produced += 1
            if self.produced > self.skip:
                fresh.append(batch)
        if fresh or finished:
            self.spool.append(fresh, checkpoint=self.key, finished=finished)

    def finish(self) -> bool:
        """Spool the last batch, wait for the spool to drain; True when it did."""
        if self.sending:
            self.builder.cut()
            self._spool(finished=True)
        return self.channel.close(self.options.drain_timeout)

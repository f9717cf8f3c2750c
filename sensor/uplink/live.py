"""The daemon's uplink: events in, batches spooled on disk and sent in the background.

Unlike a back-fill there is no end of input: a batch is also cut when it has
been open `max_age` seconds of wall-clock time (`tick`), so a quiet office still
reports within that bound. On stop, the open batch is spooled and the sender is
given a short while to drain; whatever is left stays in the spool for the next
start, which sends it first.
"""

from __future__ import annotations

from collections.abc import Callable

from sensor.config import CollectorSettings
from sensor.uplink.batch import BatchBuilder
from sensor.uplink.channel import Channel, open_spool, read_token
from sensor.uplink.sender import UplinkConfig


class LiveUplink:
    def __init__(self, settings: CollectorSettings, sensor_id: str, spool_path,
                 is_internal: Callable[[bytes], bool],
                 mac_of: Callable[[bytes], str | None], say: Callable[[str], None]) -> None:
        config = UplinkConfig(settings.url, read_token(settings.token_file),
                              ca_file=settings.ca_file, insecure=settings.insecure,
                              backoff_max=settings.retry_max)
        self.spool = open_spool(spool_path, sensor_id, settings.spool_max_mib << 20)
        if self.spool.depth:
            say(f"uplink: {self.spool.depth} batches left in the spool by the last run are "
                f"sent first")
        self.builder = BatchBuilder(is_internal, mac_of, max_age=settings.batch_seconds)
        self.channel = Channel(config, self.spool, say)

    def add(self, events: list) -> None:
        self.builder.add(events)
        self._spool()

    def tick(self, now: float) -> None:
        if self.builder.due(now):
            self.builder.cut()
            self._spool()

    def _spool(self) -> None:
        batches = self.builder.take()
        if batches:
            self.spool.append(batches)

    def close(self, drain_timeout: float) -> bool:
        self.builder.cut()
        self._spool()
        return self.channel.close(drain_timeout)

    @property
    def stats(self):
        return self.channel.stats

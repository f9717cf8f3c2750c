"""The daemon's uplink: batches spooled on disk and sent in the background.

Unlike a back-fill there is no end of input: the daemon's `Batching` also cuts a
batch when it has been open `batch_seconds` of wall-clock time, so a quiet office
still reports within that bound. On stop, the open batch is spooled and the sender
is given a short while to drain; whatever is left stays in the spool for the next
start, which sends it first.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sensor.config import CollectorSettings
from sensor.uplink.batch import Batch
from sensor.uplink.channel import Channel, open_spool, uplink_config


class LiveUplink:
    def __init__(self, settings: CollectorSettings, sensor_id: str, spool_path: Path,
                 say: Callable[[str], None]) -> None:
        config = uplink_config(settings)
        self.spool = open_spool(spool_path, sensor_id, settings.spool_max_mib << 20)
        if self.spool.depth:
            say(f"uplink: {self.spool.depth} batches left in the spool by the last run are "
                f"sent first")
        self.channel = Channel(config, self.spool, say)

    def send(self, batches: list[Batch]) -> None:
        """Spool finished batches; the channel's thread sends them in order."""
        self.spool.append(batches)

    def close(self, drain_timeout: float) -> bool:
        return self.channel.close(drain_timeout)

    @property
    def stats(self):
        return self.channel.stats

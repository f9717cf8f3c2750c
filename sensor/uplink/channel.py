"""The sending half of every uplink: an on-disk spool drained by a background sender.

Back-fill (`replay --collector`) and the daemon (`run`) differ in where their
batches come from; both put them in a `Spool` and leave it to a `Channel` to
deliver them, in order, and to say at the end what was delivered and what is
still waiting.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sensor.config import CollectorSettings
from sensor.uplink.sender import Uplink, UplinkConfig, UplinkError, UplinkThread
from sensor.uplink.spool import Spool


def read_token(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as err:
        raise UplinkError(f"cannot read token file {path}: {err}") from err


def uplink_config(settings: CollectorSettings, **overrides: float) -> UplinkConfig:
    """The uplink's settings from sensor.yaml's `collector:` (the daemon's, the doctor's)."""
    return UplinkConfig(settings.url, read_token(settings.token_file),
                        ca_file=settings.ca_file, insecure=settings.insecure,
                        backoff_max=settings.retry_max, **overrides)


def open_spool(path: Path, sensor_id: str, max_bytes: int) -> Spool:
    try:
        return Spool(path, sensor_id, max_bytes)
    except ValueError as err:
        raise UplinkError(str(err)) from err
    except OSError as err:      # includes sqlite3's errors about the file
        raise UplinkError(f"cannot open the spool {path}: {err}") from err


class Channel:
    def __init__(self, config: UplinkConfig, spool: Spool, say: Callable[[str], None]) -> None:
        self.spool = spool
        self.say = say
        self.thread = UplinkThread(Uplink(config, spool))
        self.thread.start()

    @property
    def stats(self):
        return self.thread.uplink.stats

    def close(self, drain_timeout: float) -> bool:
        """Wait up to `drain_timeout` s for the spool to drain, stop, report; True when
        nothing is left waiting."""
        drained = self.thread.wait_drained(drain_timeout)
        self.thread.stop()
        stats = self.stats
        line = (f"uplink: {stats.sent} batches delivered ({stats.duplicates} already held by "
                f"the collector), {stats.failures} failed attempts, {stats.rejected} refused")
        if self.spool.dropped_alerts:
            line += f", {self.spool.dropped_alerts} alerts dropped by a full spool (counts kept)"
        self.say(line)
        if not drained:
            self.say(f"uplink: {self.spool.waiting()} batches still in the spool "
                     f"{self.spool.path} after {drain_timeout:g} s (last error: "
                     f"{stats.last_error}); the next run with this spool sends them")
        self.spool.close()
        return drained

"""Sends the spool's batches to the collector, oldest first, until acknowledged.

One batch is in flight at a time, so the collector receives a sensor's batches
in order and the spool knows exactly which one the answer is about. A failed
send (no route, timeout, 5xx, 401/403) is retried after an exponential
backoff with full jitter, so a thousand sensors coming back after a collector
outage do not all knock at once. A batch the collector refuses as invalid
(400, 413) would block the queue for ever: it is moved aside into the spool's
`rejected` table, counted and logged, not deleted.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
import ssl
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp

from sensor import __version__
from sensor.uplink.spool import Spool

log = logging.getLogger("madoc.uplink")
EVENTS_PATH = "/api/v1/events"


class UplinkError(ValueError):
    """The uplink's configuration cannot work (bad URL, plain HTTP off loopback…)."""


@dataclass
class UplinkConfig:
    url: str                        # the collector's base URL, https://collector.example:9443
    token: str
    ca_file: str | None = None      # verify the collector against this CA instead of the system's
    insecure: bool = False          # allow plain http:// to a non-loopback address
    timeout: float = 30.0
    backoff_initial: float = 0.5
    backoff_max: float = 60.0
    path: str = EVENTS_PATH         # where batches are posted (a collector reporting upward:
    #                                 /api/v1/upstream)

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UplinkError(f"collector URL must be https://HOST[:PORT]: {self.url!r}")
        if parts.scheme == "http" and not self.insecure and not _is_loopback(parts.hostname):
            raise UplinkError(f"refusing plain HTTP to {parts.hostname}: the token would "
                              f"cross the network in clear; use https:// or set insecure: true")
        if not self.token or any(c.isspace() for c in self.token):
            raise UplinkError("the collector token is empty or contains white space")
        self.url = self.url.rstrip("/")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def client_ssl(config: UplinkConfig) -> ssl.SSLContext | None:
    """The server certificate is always verified: against `ca_file`, else the system's CAs."""
    if not config.url.startswith("https:"):
        return None
    return ssl.create_default_context(cafile=config.ca_file)


@dataclass
class UplinkStats:
    sent: int = 0
    duplicates: int = 0
    failures: int = 0
    rejected: int = 0
    last_error: str = ""
    last_success: float = 0.0


class Uplink:
    def __init__(self, config: UplinkConfig, spool: Spool) -> None:
        self.config = config
        self.spool = spool
        self.stats = UplinkStats()
        self._failures_in_a_row = 0

    def backoff(self) -> float:
        """Seconds to wait after the n-th failure in a row: full jitter on 2^n."""
        ceiling = min(self.config.backoff_max,
                      self.config.backoff_initial * 2 ** min(self._failures_in_a_row, 30))
        return random.uniform(ceiling / 2, ceiling)

    async def send_one(self, session: aiohttp.ClientSession) -> bool:
        """Send the head batch; True when the spool moved on (sent or set aside)."""
        head = self.spool.head()
        if head is None:
            return False
        sequence, body = head
        headers = {"Authorization": f"Bearer {self.config.token}",
                   "Content-Type": "application/json", "Content-Encoding": "gzip"}
        try:
            async with session.post(self.config.url + self.config.path, data=body,
                                    headers=headers) as response:
                answer = await response.read()
                status = response.status
        except (TimeoutError, aiohttp.ClientError, OSError) as err:
            self._failed(f"{type(err).__name__}: {err}")
            return False
        if status == 200:
            self.spool.ack(sequence)
            self.stats.sent += 1
            self.stats.duplicates += b'"duplicate":true' in answer
            self.stats.last_success = time.time()
            self._failures_in_a_row = 0
            return True
        text = " ".join(answer[:300].decode("utf-8", "replace").split())
        if status in (400, 413, 422):
            self.spool.reject(sequence, f"{status} {text}")
            self.stats.rejected += 1
            log.error("collector refused batch %d (%d %s); set aside in the spool's "
                      "rejected table", sequence, status, text)
            return True
        self._failed(f"HTTP {status}: {text}")
        return False

    def _failed(self, reason: str) -> None:
        self.stats.failures += 1
        self._failures_in_a_row += 1
        if reason != self.stats.last_error:
            log.warning("collector %s: %s; will retry", self.config.url, reason)
        self.stats.last_error = reason

    def _session(self) -> aiohttp.ClientSession:
        """One connection to the collector, its certificate verified (`client_ssl`)."""
        return aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.config.timeout),
            connector=aiohttp.TCPConnector(ssl=client_ssl(self.config) or False, limit=1),
            headers={"User-Agent": f"madoc-sensor/{__version__}"}, auto_decompress=True)

    async def drain(self, deadline: float) -> bool:
        """Send until what this process spooled is stored (True) or `deadline`
        (monotonic) passes, backing off after failures as `run` does."""
        async with self._session() as session:
            while self.spool.waiting() and time.monotonic() < deadline:
                if not await self.send_one(session):
                    await asyncio.sleep(min(self.backoff(),
                                            max(0.0, deadline - time.monotonic())))
        return self.spool.waiting() == 0

    async def run(self, stop: threading.Event, poll: float = 0.05) -> None:
        """Send until `stop` is set; wait `poll` seconds when the spool is empty."""
        async with self._session() as session:
            while not stop.is_set():
                if await self.send_one(session):
                    continue
                delay = self.backoff() if self._failures_in_a_row else poll
                deadline = time.monotonic() + delay
                while not stop.is_set() and time.monotonic() < deadline:
                    await asyncio.sleep(min(poll, delay))


class UplinkThread:
    """Runs an `Uplink` in a thread of its own, beside a synchronous pipeline."""

    def __init__(self, uplink: Uplink) -> None:
        self.uplink = uplink
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, name="madoc-uplink", daemon=True)

    def _main(self) -> None:
        asyncio.run(self.uplink.run(self._stop))

    def start(self) -> None:
        self._thread.start()

    def wait_drained(self, timeout: float) -> bool:
        """Block until what this process spooled is stored (True) or `timeout` seconds
        pass (False)."""
        deadline = time.monotonic() + timeout
        while self.uplink.spool.waiting():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

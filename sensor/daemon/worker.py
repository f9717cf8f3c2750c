"""A capture worker: live captures → pipeline → events, one process's share of the link.

`CaptureWorker.step` waits (select, GIL released) for frames, feeds every ready
capture's batches (and, in gateway mode, the conntrack events) to the pipeline,
expires idle flows by the clock (a quiet link brings no packet to do it), swaps
in reloaded rules between batches, and returns the events produced. With
`workers: 1` the daemon calls it in its own loop; with more, each worker runs
`worker_process` in a forked child that sends its events to the daemon
through a pipe, and the daemon merges them.
"""

from __future__ import annotations

import logging
import pickle
import signal
import time
from collections import Counter, deque
from dataclasses import dataclass, field, fields, replace
from multiprocessing.connection import Connection

from sensor.blocklist.reload import ReloadStatus, RulesReloader
from sensor.core.conntrack_flows import ConntrackEvent
from sensor.core.pipeline import FRAME_RECORD, Event, Pipeline, PipelineStats
from sensor.sources.capture import CaptureStats, LiveCapture, wait_readable
from sensor.sources.conntrack import ConntrackSource

log = logging.getLogger("madoc.sensor")
MAX_BATCHES_PER_STEP = 64          # then look at the clock, reloads and signals again
MAX_EVENTS_PER_STEP = 16_384       # or hand the events on sooner: a flood can end a flow
                                   # per packet, and they must not pile up
# Conntrack events are held this long before use: the DNS answer that led to a
# connection may still sit in a ring block (handed over after READ_TIMEOUT_MS at the
# latest) when the connection's NEW event arrives, and must be seen first.
CONNTRACK_HOLD = 0.5
FLOW_CLOCK_SLACK = 1.0             # expire by (now - slack): frames still in the ring are older
STATS_PERIOD = 1.0


@dataclass
class WorkerStats:
    """One worker's figures, copied for the daemon: picklable, and safe to read while
    the worker goes on."""

    pipeline: PipelineStats = field(default_factory=PipelineStats)
    rules: ReloadStatus = field(default_factory=ReloadStatus)
    flows_active: int = 0
    flow_evictions: int = 0
    flow_emergencies: int = 0           # times a flow table went into emergency mode
    flows_in_emergency: int = 0         # flow tables in emergency mode now
    malformed: Counter[str] = field(default_factory=Counter)
    capture: dict[str, CaptureStats] = field(default_factory=dict)    # by interface
    conntrack_overruns: int = 0
    lag: float = 0.0                    # seconds from the kernel's timestamp to processing

    @property
    def dropped(self) -> int:
        """Dropped by the kernel, all interfaces."""
        return sum(c.dropped for c in self.capture.values())

    @property
    def received(self) -> int:
        return sum(c.received for c in self.capture.values())

    def add(self, other: WorkerStats) -> None:
        """Sum of two workers' figures (capture statistics summed per interface; of the
        rules, the oldest last success)."""
        _add_fields(self.pipeline, other.pipeline)
        for name in ("flows_active", "flow_evictions", "flow_emergencies",
                     "flows_in_emergency", "conntrack_overruns"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        mine, theirs = self.rules, other.rules
        self.rules = ReloadStatus(
            mine.reloads + theirs.reloads, mine.failures + theirs.failures,
            min(mine.last_success or theirs.last_success, theirs.last_success),
            mine.last_error or theirs.last_error,
            mine.source_entries or dict(theirs.source_entries))
        self.lag = max(self.lag, other.lag)
        self.malformed.update(other.malformed)
        for interface, counts in other.capture.items():
            _add_fields(self.capture.setdefault(interface, CaptureStats()), counts)


def _add_fields(total: PipelineStats | CaptureStats, part: PipelineStats | CaptureStats) -> None:
    """Add each (integer) field of `part` to `total`."""
    for item in fields(part):
        setattr(total, item.name, getattr(total, item.name) + getattr(part, item.name))


class CaptureWorker:
    def __init__(self, captures: list[LiveCapture], pipeline: Pipeline,
                 reloader: RulesReloader, conntrack: ConntrackSource | None = None) -> None:
        self.captures = captures
        self.pipeline = pipeline
        self.reloader = reloader
        self.conntrack = conntrack
        self._held: deque[tuple[float, ConntrackEvent]] = deque()
        self.lag = 0.0          # of the last batch: its last frame's kernel time to now
        self._sources: list[LiveCapture | ConntrackSource] = [
            *captures, *([conntrack] if conntrack else [])]

    def step(self, timeout: float) -> list[Event]:
        pipeline = self.pipeline
        for source in wait_readable(self._sources, timeout):
            if source is self.conntrack:
                self._read_conntrack()
                continue
            for _ in range(MAX_BATCHES_PER_STEP):
                batch = source.read()
                if batch is None:
                    break
                pipeline.feed_batch(*batch)
                sec, usec = FRAME_RECORD.unpack_from(batch[1], len(batch[1]) - 16)[:2]
                self.lag = time.time() - (sec + usec * 1e-6)
                if len(pipeline.events) >= MAX_EVENTS_PER_STEP:
                    break
        if self._held:
            self._feed_conntrack(time.time() - CONNTRACK_HOLD)
        pipeline.tick(time.time() - FLOW_CLOCK_SLACK)
        self.reloader.apply(pipeline.swap_blocklist, log.info, log.error)
        return self._take()

    def finish(self) -> list[Event]:
        """Process the frames still in the rings, end every open flow (the daemon is
        stopping) and return the last events."""
        for capture in self.captures:
            for _ in range(MAX_BATCHES_PER_STEP):     # bounded: the link does not stop
                batch = capture.read()
                if batch is None:
                    break
                self.pipeline.feed_batch(*batch)
        if self.conntrack:
            self._read_conntrack()
            self._feed_conntrack(float("inf"))
            self.pipeline.finish(time.time(), self.conntrack.current())
        else:
            self.pipeline.finish()
        return self._take()

    def _read_conntrack(self) -> None:
        now = time.time()
        self._held.extend((now, event) for event in self.conntrack.read())

    def _feed_conntrack(self, until: float) -> None:
        """Give the pipeline the held conntrack events received at or before `until`."""
        held, feed = self._held, self.pipeline.feed_conntrack
        while held and held[0][0] <= until:
            feed(*held.popleft())

    def _take(self) -> list[Event]:
        events = self.pipeline.events
        if not events:
            return []
        taken = events[:]
        events.clear()
        return taken

    def stats(self) -> WorkerStats:
        p = self.pipeline
        return WorkerStats(replace(p.stats), replace(self.reloader.status),
                           len(p.flows.flows) + len(p.conntrack.flows), p.flows.evictions,
                           p.flows.emergencies, int(p.flows.emergency),
                           Counter(p.malformed), {c.interface: c.stats() for c in self.captures},
                           self.conntrack.overruns if self.conntrack else 0, self.lag)

    def close(self) -> None:
        for source in self._sources:
            source.close()


def worker_process(worker: CaptureWorker, conn: Connection) -> None:
    """Main of a forked worker: step until SIGTERM, sending ("events", [...]) and
    ("stats", WorkerStats) messages, then the last events, the last stats and
    ("done", None). SIGHUP asks for a rules reload; SIGINT is left to the daemon."""
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, lambda *_: worker.reloader.request())
    send = conn.send_bytes
    next_stats = 0.0
    try:
        while not stopping:
            events = worker.step(0.2)
            if events:
                send(pickle.dumps(("events", events), pickle.HIGHEST_PROTOCOL))
            now = time.monotonic()
            if now >= next_stats:
                send(pickle.dumps(("stats", worker.stats())))
                next_stats = now + STATS_PERIOD
        send(pickle.dumps(("events", worker.finish()), pickle.HIGHEST_PROTOCOL))
        send(pickle.dumps(("stats", worker.stats())))
        send(pickle.dumps(("done", None)))
    except (BrokenPipeError, ConnectionResetError):
        pass                # the daemon is gone; nothing to report to
    finally:
        worker.close()
        conn.close()

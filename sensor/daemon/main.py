"""`madoc-sensor run`: the live sensor on a gateway or behind a mirror port.

Start-up order matters, and is this: validate the configuration; load the
rules (from the compiled cache when unchanged); open the capture sockets and
the EVE log while still root; give up root (keep CAP_NET_RAW); fork the extra
capture workers, each with its own share of the link through PACKET_FANOUT
(by internal host, so that one worker sees a host's DNS and its connections);
only then start threads (the uplink) — forking after threads start is unsafe.
systemd is told READY once packets can flow.

In gateway mode (the sensor runs on the office's router) flows come from the
kernel's conntrack events instead of packets, and only DNS and the packets names
are read from are captured; the daemon then keeps CAP_NET_ADMIN too, to read the
conntrack table at stop.

The daemon's loop merges what the workers produce (events over pipes, or
directly from the in-process worker when `workers: 1`) into the outputs: the
EVE log and the uplink, whose batches go through the on-disk spool. SIGHUP
reloads the rules in every worker; SIGTERM/SIGINT end every open flow, spool
the last batch and give the sender a short while to drain, all within
`stop_timeout` seconds; what is left in the spool is sent on the next start.
"""

from __future__ import annotations

import fcntl
import logging
import multiprocessing
import multiprocessing.popen_fork  # noqa: F401 - imported while still root (see start)
import os
import pickle
import signal
import time
from multiprocessing.connection import Connection, wait
from typing import BinaryIO

from sensor.blocklist.cache import load_cached
from sensor.blocklist.loader import DEFAULT_CACHE_DIR, RulesError
from sensor.blocklist.reload import RulesReloader
from sensor.collector.store import StoreError
from sensor.config import SensorConfig
from sensor.core.detect import internal_networks
from sensor.core.pipeline import Event, Pipeline, event_chunks
from sensor.daemon.metrics import MetricsError, SensorCollector, SensorSnapshot, serve
from sensor.daemon.netinfo import NeighbourTable, auto_internal_networks
from sensor.daemon.privileges import (
    CAP_NET_ADMIN,
    CAP_NET_RAW,
    PrivilegeError,
    drop_privileges,
    service_account,
)
from sensor.daemon.worker import CaptureWorker, WorkerStats, worker_process
from sensor.sinks.counts import EventCounts
from sensor.sinks.eve import EveWriter
from sensor.sinks.summary_store import LocalSummary
from sensor.sources.conntrack import ConntrackSource, ConntrackUnavailable, enable_accounting
from sensor.sources.fanout import host_fanout_program
from sensor.sources.live import open_captures
from sensor.sources.pcapfile import CaptureError
from sensor.support import gcpolicy
from sensor.support.localtime import local_timezone
from sensor.support.paths import unit_state_directory
from sensor.support.sdnotify import Notifier
from sensor.uplink.batch import BatchBuilder, Batching
from sensor.uplink.live import LiveUplink
from sensor.uplink.sender import UplinkError

log = logging.getLogger("madoc.sensor")
EXIT_OK, EXIT_FAILED, EXIT_BAD_CONFIG = 0, 1, 2
STEP_SECONDS = 0.2
STATUS_PERIOD = 60.0
METRICS_PERIOD = 1.0
LOCAL_BATCH_SECONDS = 60.0  # without a collector, the summary store takes a batch a minute
DRAIN_SHARE = 0.5        # of stop_timeout, for the uplink after the workers have stopped


class StartError(RuntimeError):
    """The daemon cannot start; the message says why, in one line."""


class Outputs:
    """Where merged events go: the EVE log, and batched once (`Batching`), the uplink's
    spool and the local summary store."""

    def __init__(self, eve: BinaryIO | None) -> None:
        self.eve_stream = eve
        self.eve = EveWriter(eve) if eve else None
        self.uplink: LiveUplink | None = None
        self.local: LocalSummary | None = None
        self.batching: Batching | None = None
        self.counts = EventCounts()

    def handle(self, events: list[Event]) -> None:
        for chunk in event_chunks(events):
            self.counts.add(chunk)
            if self.eve:
                self.eve.write(chunk)
            if self.batching:
                self.batching.add(chunk)

    def tick(self, now: float) -> None:
        if self.eve_stream:
            self.eve_stream.flush()
        if self.batching:
            self.batching.tick(now)

    def close(self, drain_timeout: float) -> None:
        if self.eve_stream:
            self.eve_stream.close()
        if self.batching:
            self.batching.flush()
        if self.local:
            self.local.close()
        if self.uplink:
            self.uplink.close(drain_timeout)


class Daemon:
    def __init__(self, config: SensorConfig, notifier: Notifier | None = None) -> None:
        self.config = config
        self.notifier = notifier or Notifier()
        self.stopping = False
        self.workers: list[CaptureWorker] = []
        self.children: dict[Connection, multiprocessing.Process] = {}
        self.child_stats: dict[Connection, WorkerStats] = {}
        self.neighbours: NeighbourTable | None = None
        self.outputs: Outputs | None = None
        self.metrics: SensorCollector | None = None
        self._state_lock: int | None = None     # held while running (_lock)
        self._next_snapshot = 0.0
        self._tables_in_emergency = 0

    # -- start -----------------------------------------------------------------------

    def start(self) -> None:
        config = self.config
        try:
            if os.geteuid() == 0 and config.user != "root":
                service_account(config.user)      # before anything is opened
            blocklist, report, _ = load_cached(config.rules, DEFAULT_CACHE_DIR)
        except (PrivilegeError, RulesError) as err:
            raise StartError(str(err)) from err
        for warning in report.warnings:
            log.warning("%s", warning)
        networks = config.internal_networks or auto_internal_networks()
        log.info("internal networks: %s", ", ".join(networks))
        internal = internal_networks(networks)
        fanout = None
        if config.workers > 1:
            fanout = (os.getpid() & 0x7FFF, host_fanout_program(networks))
        conntrack = self._open_conntrack() if config.mode == "gateway" else None
        try:
            for _ in range(config.workers):
                captures = open_captures(config.interfaces, config.filter, config.capture,
                                         fanout)
                pipeline = Pipeline(blocklist, internal, config.flows, config.tunnels,
                                    config.app, gateway=config.mode == "gateway")
                reloader = RulesReloader(config.rules, config.rules_reload_seconds)
                reloader.loaded(report)
                self.workers.append(CaptureWorker(captures, pipeline, reloader, conntrack))
        except CaptureError as err:
            if conntrack and not self.workers:
                conntrack.close()
            self._close_workers()
            raise StartError(str(err)) from err
        eve = self._open_eve()
        self._prepare_state_dir()
        keep = (CAP_NET_RAW, CAP_NET_ADMIN) if conntrack else (CAP_NET_RAW,)
        try:
            log.info("%s", drop_privileges(config.user, keep))
        except PrivilegeError as err:
            self._close_workers()
            raise StartError(str(err)) from err
        self.outputs = outputs = Outputs(eve)
        gcpolicy.settle()          # before forking: the children share the frozen pages
        if len(self.workers) > 1:
            self._fork_workers()
        if config.collector:
            self.neighbours = NeighbourTable()
            try:
                outputs.uplink = LiveUplink(config.collector, config.sensor_id or "",
                                            config.spool_path, log.info)
            except UplinkError as err:
                self._stop_children()
                raise StartError(str(err)) from err
        try:
            outputs.local = LocalSummary(config.summary_path, config.unit, local_timezone())
        except StoreError as err:
            self._stop_children()
            raise StartError(str(err)) from err
        builder = BatchBuilder(
            self.workers[0].pipeline.detector.is_internal,
            self.neighbours.mac_of if self.neighbours is not None else lambda addr: None,
            max_age=config.collector.batch_seconds if config.collector else LOCAL_BATCH_SECONDS)
        outputs.batching = Batching(builder, [outputs.local.keep] + (
            [outputs.uplink.send] if outputs.uplink else []))
        if config.metrics_listen:
            self.metrics = SensorCollector()
            self._snapshot(self.worker_stats())
            try:
                serve(config.metrics_listen, self.metrics,
                      str(config.metrics_cert_file) if config.metrics_cert_file else None,
                      str(config.metrics_key_file) if config.metrics_key_file else None,
                      config.metrics_credentials)
            except MetricsError as err:
                self._stop_children()
                raise StartError(str(err)) from err
            log.info("metrics on %s://%s/metrics%s",
                     "https" if config.metrics_cert_file else "http", config.metrics_listen,
                     " (basic auth)" if config.metrics_credentials else "")
        entries = sum(s.entries for s in report.sources)
        self.notifier.ready(f"capturing on {', '.join(config.interfaces)} with "
                            f"{config.workers} worker(s), {entries:,} indicators")
        log.info("capturing on %s with %d worker(s), filter %r, %s indicators",
                 ", ".join(config.interfaces), config.workers, config.filter or "(all)",
                 f"{entries:,}")

    def _open_conntrack(self) -> ConntrackSource:
        """Gateway mode: conntrack events for the flows (packets are captured for DNS)."""
        if self.config.conntrack.accounting:
            for setting in enable_accounting():
                log.info("turned on %s (per-connection counts and times)", setting)
        try:
            source = ConntrackSource(self.config.conntrack.receive_buffer_mib)
        except ConntrackUnavailable as err:
            raise StartError(str(err)) from err
        if not source.accounting:
            log.warning("net.netfilter.nf_conntrack_acct is off: flows from conntrack have "
                        "no packet or byte counts")
        log.info("gateway mode: flows from conntrack events, DNS%s from capture",
                 " and names inside connections" if self.config.app else "")
        return source

    def _open_eve(self) -> BinaryIO | None:
        if self.config.eve is None:
            return None
        try:
            self.config.eve.parent.mkdir(parents=True, exist_ok=True)
            stream = open(self.config.eve, "ab", buffering=1 << 20)  # noqa: SIM115
        except OSError as err:
            self._close_workers()
            raise StartError(f"cannot write the EVE log {self.config.eve}: "
                             f"{err.strerror}") from err
        if not _lock(stream.fileno()):
            stream.close()
            self._close_workers()
            raise StartError(f"the EVE log {self.config.eve} is written by another "
                             f"madoc-sensor: give each sensor its own eve path "
                             f"(madoc-sensor@NAME: /var/log/madoc/NAME/eve.json)")
        return stream

    def _prepare_state_dir(self) -> None:
        """The spool lives here and must stay writable after root is given up."""
        state = self.config.state_dir
        unit_state = unit_state_directory()
        if unit_state and not state.is_relative_to(unit_state):
            self._close_workers()
            raise StartError(f"state_dir {state} ({self.config.source}) is outside this "
                             f"unit's state directory {unit_state}, the only one it may "
                             f"write: leave state_dir out, or set it to {unit_state}")
        try:
            state.mkdir(parents=True, exist_ok=True, mode=0o750)
            self._state_lock = os.open(state / "sensor.lock", os.O_RDWR | os.O_CREAT, 0o640)
            if os.geteuid() == 0 and self.config.user != "root":
                account = service_account(self.config.user)
                for path in [state, *state.glob("spool-*"), state / "sensor.lock"]:
                    os.chown(path, account.pw_uid, account.pw_gid)
        except (OSError, PrivilegeError) as err:
            self._close_workers()
            raise StartError(f"cannot prepare the state directory {state}: {err}") from err
        if not _lock(self._state_lock):
            self._close_workers()
            raise StartError(f"the state directory {state} is in use by another madoc-sensor "
                             f"(its summary and spool would be shared): give each sensor its "
                             f"own state_dir (madoc-sensor@NAME: /var/lib/madoc/NAME)")

    def _fork_workers(self) -> None:
        context = multiprocessing.get_context("fork")
        for index, worker in enumerate(self.workers):
            receive, send = context.Pipe(duplex=False)
            child = context.Process(target=worker_process, args=(worker, send),
                                    name=f"madoc-worker-{index}", daemon=False)
            child.start()
            send.close()
            self.children[receive] = child
            self.child_stats[receive] = WorkerStats()
            worker.close()       # the child holds the capture now

    # -- run -------------------------------------------------------------------------

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGHUP, self._on_reload)
        status = EXIT_OK
        next_status = time.monotonic() + STATUS_PERIOD
        started = time.monotonic()
        try:
            while not self.stopping:
                if self.children:
                    if not self._merge_children(STEP_SECONDS):
                        status = EXIT_FAILED
                        break
                else:
                    self.outputs.handle(self.workers[0].step(STEP_SECONDS))
                self._tick()
                if time.monotonic() >= next_status:
                    self._report_status()
                    next_status = time.monotonic() + STATUS_PERIOD
        finally:
            self._shutdown(started)
        return status

    def _on_stop(self, signum: int, _frame: object) -> None:
        if not self.stopping:
            log.info("%s: stopping", signal.Signals(signum).name)
        self.stopping = True

    def _on_reload(self, _signum: int, _frame: object) -> None:
        log.info("SIGHUP: reloading the rules")
        if self.children:
            for child in self.children.values():
                if child.pid:
                    os.kill(child.pid, signal.SIGHUP)
        else:
            self.workers[0].reloader.request()

    def _merge_children(self, timeout: float) -> bool:
        """Take every message waiting from the workers; False when one died."""
        for conn in wait(list(self.children), timeout):
            try:
                kind, payload = pickle.loads(conn.recv_bytes())
            except (EOFError, OSError):
                log.error("capture worker %s ended unexpectedly (exit status %s); stopping "
                          "so that the service manager restarts the sensor",
                          self.children[conn].name, self.children[conn].exitcode)
                del self.children[conn]
                return False
            self._child_message(conn, kind, payload)
        return True

    def _child_message(self, conn: Connection, kind: str, payload: object) -> None:
        if kind == "events":
            self.outputs.handle(payload)
        elif kind == "stats":
            self.child_stats[conn] = payload
        elif kind == "done":
            self.children.pop(conn).join()

    def _snapshot(self, workers: list[WorkerStats]) -> None:
        self.metrics.snapshot = SensorSnapshot.take(
            self.config.sensor_id or "", self.config.mode, workers, self.outputs.counts,
            self.outputs.uplink)

    def _tick(self) -> None:
        if time.monotonic() >= self._next_snapshot:
            workers = self.worker_stats()       # once a second, for both
            if self.metrics:
                self._snapshot(workers)
            self._watch_flow_tables(_total(workers))
            self._next_snapshot = time.monotonic() + METRICS_PERIOD
        self.outputs.tick(time.time())
        if self.neighbours is not None:   # an empty table is falsy (it has __len__)
            self.neighbours.tick()
        if not self.children or all(c.is_alive() for c in self.children.values()):
            self.notifier.watchdog()

    def _watch_flow_tables(self, stats: WorkerStats) -> None:
        """Say when a flow table goes into emergency mode (nearly full) and out of it."""
        if stats.flows_in_emergency and not self._tables_in_emergency:
            log.warning("flow table nearly full (%s open flows, max_flows %s): unanswered "
                        "flows now end after %.0f s; %s evicted so far",
                        f"{stats.flows_active:,}", f"{self.config.flows.max_flows:,}",
                        self.config.flows.emergency_idle, f"{stats.flow_evictions:,}")
        elif self._tables_in_emergency and not stats.flows_in_emergency:
            log.warning("flow table emergency over: %s open flows, %s evicted in all",
                        f"{stats.flows_active:,}", f"{stats.flow_evictions:,}")
        self._tables_in_emergency = stats.flows_in_emergency

    def worker_stats(self) -> list[WorkerStats]:
        """Each worker's latest figures (from its messages, or in-process)."""
        if self.child_stats:
            return list(self.child_stats.values())
        return [w.stats() for w in self.workers]

    def stats(self) -> WorkerStats:
        return _total(self.worker_stats())

    def _report_status(self) -> None:
        stats = self.stats()
        line = (f"{stats.pipeline.packets:,} packets, {stats.dropped:,} dropped by the kernel"
                f"{_share(stats.dropped, stats.received + stats.dropped)}, "
                f"{self.outputs.counts.alerts:,} hits, "
                f"{stats.flows_active:,} open flows")
        if self.config.mode == "gateway":
            line += f", {stats.pipeline.conntrack_events:,} conntrack events"
            if stats.conntrack_overruns:
                line += f" ({stats.conntrack_overruns} receive-buffer overruns)"
        if self.outputs.uplink:
            line += f", {self.outputs.uplink.spool.depth} batches spooled"
        log.info("%s", line)
        self.notifier.status(line)

    # -- stop ------------------------------------------------------------------------

    def _shutdown(self, started: float) -> None:
        self.notifier.stopping()
        deadline = time.monotonic() + self.config.stop_timeout
        if self.children:
            self._stop_children(deadline - self.config.stop_timeout * DRAIN_SHARE)
        elif self.workers:
            self.outputs.handle(self.workers[0].finish())
        stats = self.stats()
        self._close_workers()
        shares = ""
        if len(self.child_stats) > 1:
            each = ", ".join(f"{part.pipeline.packets:,}" for part in self.child_stats.values())
            shares = f" (per worker: {each})"
        log.info("stopped after %.0f s: %s packets%s, %s dropped by the kernel, %s hits",
                 time.monotonic() - started, f"{stats.pipeline.packets:,}", shares,
                 f"{stats.dropped:,}", f"{self.outputs.counts.alerts:,}")
        self.outputs.close(max(0.5, deadline - time.monotonic()))

    def _stop_children(self, deadline: float | None = None) -> None:
        for child in self.children.values():
            if child.is_alive() and child.pid:
                os.kill(child.pid, signal.SIGTERM)
        deadline = deadline or time.monotonic() + 5.0
        while self.children and time.monotonic() < deadline:
            self._merge_children(max(0.0, deadline - time.monotonic()))
        for conn, child in list(self.children.items()):
            log.error("capture worker %s did not finish in time; its last events are lost",
                      child.name)
            child.kill()
            child.join()
            del self.children[conn]

    def _close_workers(self) -> None:
        for worker in self.workers:
            worker.close()


def _total(workers: list[WorkerStats]) -> WorkerStats:
    total = WorkerStats()
    for part in workers:
        total.add(part)
    return total


def _share(part: int, whole: int) -> str:
    return f" ({100 * part / whole:.2f}%)" if whole and part else ""


def _lock(descriptor: int) -> bool:
    """Hold an exclusive lock on an open file for the daemon's life; False when another
    process holds it. The kernel lets go when the process ends, however it ends."""
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def run(config: SensorConfig) -> int:
    daemon = Daemon(config)
    try:
        daemon.start()
    except StartError as err:
        log.error("%s", err)
        return EXIT_BAD_CONFIG
    return daemon.run()


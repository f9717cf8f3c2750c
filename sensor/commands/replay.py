"""`madoc-sensor replay`: capture files → pipeline → EVE JSON and a summary."""

from __future__ import annotations

import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, TextIO

from sensor import SOURCE_TREE
from sensor.blocklist.cache import load_cached
from sensor.blocklist.loader import DEFAULT_CACHE_DIR, LoadReport, RulesError
from sensor.blocklist.matcher import Blocklist
from sensor.blocklist.reload import RulesReloader
from sensor.collector.store import StoreError
from sensor.core.decode.tunnel import TunnelPorts
from sensor.core.detect import DEFAULT_INTERNAL_NETWORKS, internal_networks
from sensor.core.pipeline import Pipeline, event_chunks
from sensor.sinks.counts import EventCounts, write_summary
from sensor.sinks.eve import EveWriter
from sensor.sinks.summary_store import LocalSummary
from sensor.sources.pcapfile import CaptureError, CaptureFile, file_size
from sensor.support import gcpolicy
from sensor.support.accounts import as_invoker
from sensor.support.localtime import local_timezone
from sensor.support.progress import Progress
from sensor.uplink.backfill import Backfill, BackfillOptions
from sensor.uplink.batch import BatchBuilder, Batching
from sensor.uplink.sender import UplinkError

DEFAULT_RULES = SOURCE_TREE / "rules" / "rules.yaml"
EXIT_OK, EXIT_BAD_INPUT, EXIT_UNDELIVERED = 0, 2, 3


@dataclass
class ReplayOptions:
    captures: list[Path]
    rules: list[Path] = field(default_factory=list)
    eve: str | None = None               # a path, "-" for stdout, None for no EVE output
    dns: bool = True
    flows: bool = True
    app: bool = True                     # read names inside connections (TLS, QUIC, HTTP)
    bpf_filter: str | None = None
    internal: list[str] = field(default_factory=lambda: list(DEFAULT_INTERNAL_NETWORKS))
    reload_period: float = 5.0           # seconds between checks of the rules' files
    uplink: BackfillOptions | None = None  # send hits and host counts to a collector
    summary: Path | None = None          # keep per-host daily counts in this SQLite file
    unit: str = "local"                  # the unit the summary store names
    tunnels: TunnelPorts = field(default_factory=TunnelPorts)   # UDP ports of VXLAN, Geneve


def _error(message: str) -> None:
    print(f"madoc-sensor: {message}", file=sys.stderr)


def load_rules(paths: list[Path]) -> tuple[Blocklist, LoadReport] | None:
    """Load blocklists (from the compiled cache when unchanged), printing every rejected
    line; None when nothing is usable."""
    try:
        blocklist, report, _ = load_cached(paths, DEFAULT_CACHE_DIR)
    except RulesError as err:
        _error(str(err))
        return None
    for warning in report.warnings:
        _error(f"warning: {warning}")
    return blocklist, report


def replay(options: ReplayOptions, summary_out: TextIO = sys.stderr) -> int:
    rules_paths = options.rules or [DEFAULT_RULES]
    loaded = load_rules(rules_paths)
    if loaded is None:
        return EXIT_BAD_INPUT
    blocklist, report = loaded
    reloader = RulesReloader(rules_paths, options.reload_period)
    reloader.loaded(report)
    try:
        internal = internal_networks(options.internal)
    except ValueError as err:
        _error(f"bad internal network: {err}")
        return EXIT_BAD_INPUT
    pipeline = Pipeline(blocklist, internal, tunnel_ports=options.tunnels, app=options.app)
    backfill = None
    if options.uplink is not None:
        try:
            backfill = Backfill(options.uplink, options.captures, pipeline.detector.is_internal,
                                _error)
        except UplinkError as err:
            _error(str(err))
            return EXIT_BAD_INPUT
    local = local_batches = None
    if options.summary is not None:
        try:
            local = LocalSummary(options.summary, options.unit, local_timezone())
        except StoreError as err:
            _error(str(err))
            return EXIT_BAD_INPUT
        local_batches = Batching(BatchBuilder(pipeline.detector.is_internal), [local.keep])
    counts = EventCounts()
    status = EXIT_OK
    started = time.perf_counter()
    try:
        with as_invoker():
            stream = _open_eve(options.eve)
    except OSError as err:
        _error(f"cannot write EVE output {options.eve}: {err.strerror}")
        return EXIT_BAD_INPUT
    writer = EveWriter(stream, dns=options.dns, flows=options.flows,
                       app=options.app) if stream else None
    gcpolicy.settle()

    def drain() -> None:
        for events in event_chunks(pipeline.events):
            counts.add(events)
            if writer:
                writer.write(events)
            if backfill:
                backfill.add(events)
            if local_batches:
                local_batches.add(events)
        pipeline.events.clear()

    progress = None
    if sys.stderr.isatty():
        progress = Progress(sys.stderr, sum(map(file_size, options.captures)))
    finished_bytes = 0
    previous_handler = signal.signal(signal.SIGHUP, lambda *_: reloader.request())
    try:
        for path in options.captures:
            try:
                with as_invoker():      # the admin's own file
                    capture = CaptureFile(path, options.bpf_filter)
                for data, records, link in capture.batches():
                    _reload(reloader, pipeline)
                    pipeline.feed_batch(data, records, link)
                    drain()
                    if progress:
                        progress.update(finished_bytes + capture.position(),
                                        pipeline.stats.packets, path.name)
            except CaptureError as err:
                _clear(progress)
                _error(f"{path}: {err}")
                status = EXIT_BAD_INPUT
                continue
            finally:
                finished_bytes += file_size(path)
            if capture.warning:
                _clear(progress)
                _error(f"warning: {path}: {capture.warning}")
        pipeline.finish()
        drain()
    finally:
        _clear(progress)
        signal.signal(signal.SIGHUP, previous_handler)
        if stream is not None and stream is not sys.stdout.buffer:
            stream.close()
        elif stream is not None:
            stream.flush()
    if local_batches is not None and local is not None:
        local_batches.flush()
        local.close()
    write_summary(summary_out, pipeline, counts, len(options.captures),
                  time.perf_counter() - started)
    if backfill is not None and not backfill.finish():
        status = max(status, EXIT_UNDELIVERED)
    return status


def _clear(progress: Progress | None) -> None:
    """Before a message or the summary: wipe the bar (it redraws at the next batch)."""
    if progress:
        progress.close()


def _reload(reloader: RulesReloader, pipeline: Pipeline) -> None:
    """Swap in a reloaded blocklist between batches; say what happened on stderr."""
    reloader.apply(pipeline.swap_blocklist,
                   lambda said: _error(f"{said}; in use from packet "
                                       f"{pipeline.stats.packets + 1:,} on"),
                   _error)


def _open_eve(eve: str | None) -> BinaryIO | None:
    if eve is None:
        return None
    if eve == "-":
        return sys.stdout.buffer
    return open(eve, "wb", buffering=1 << 20)

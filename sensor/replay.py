"""`madoc-sensor replay`: capture files → pipeline → EVE JSON and a summary."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, TextIO

from sensor.blocklist.loader import RulesError, load_blocklist
from sensor.detect import DEFAULT_INTERNAL_NETWORKS, internal_networks
from sensor.pipeline import Pipeline
from sensor.sinks.eve import EveWriter
from sensor.sinks.summary import EventCounts, write_summary
from sensor.sources.pcapfile import CaptureError, CaptureFile

DEFAULT_RULES = Path(__file__).resolve().parent.parent / "rules" / "rules.yaml"
EXIT_OK, EXIT_BAD_INPUT = 0, 2


@dataclass
class ReplayOptions:
    captures: list[Path]
    rules: list[Path] = field(default_factory=list)
    eve: str | None = None               # a path, "-" for stdout, None for no EVE output
    dns: bool = True
    flows: bool = True
    bpf_filter: str | None = None
    internal: list[str] = field(default_factory=lambda: list(DEFAULT_INTERNAL_NETWORKS))


def _error(message: str) -> None:
    print(f"madoc-sensor: {message}", file=sys.stderr)


def load_rules(paths: list[Path]):
    """Load blocklists, printing every rejected line; None when nothing is usable."""
    paths = paths or [DEFAULT_RULES]
    try:
        blocklist, report = load_blocklist(paths)
    except RulesError as err:
        _error(str(err))
        return None
    for warning in report.warnings:
        _error(f"warning: {warning}")
    return blocklist


def replay(options: ReplayOptions, summary_out: TextIO = sys.stderr) -> int:
    blocklist = load_rules(options.rules)
    if blocklist is None:
        return EXIT_BAD_INPUT
    try:
        internal = internal_networks(options.internal)
    except ValueError as err:
        _error(f"bad internal network: {err}")
        return EXIT_BAD_INPUT
    pipeline = Pipeline(blocklist, internal)
    counts = EventCounts()
    status = EXIT_OK
    started = time.perf_counter()
    try:
        stream = _open_eve(options.eve)
    except OSError as err:
        _error(f"cannot write EVE output {options.eve}: {err.strerror}")
        return EXIT_BAD_INPUT
    writer = EveWriter(stream, dns=options.dns, flows=options.flows) if stream else None
    events = pipeline.events
    try:
        for path in options.captures:
            try:
                capture = CaptureFile(path, options.bpf_filter)
                for data, records in capture.batches():
                    pipeline.feed_batch(data, records, capture.link)
                    counts.add(events)
                    if writer:
                        writer.write(events)
                    events.clear()
            except CaptureError as err:
                _error(f"{path}: {err}")
                status = EXIT_BAD_INPUT
                continue
            if capture.warning:
                _error(f"warning: {path}: {capture.warning}")
        pipeline.finish()
        counts.add(events)
        if writer:
            writer.write(events)
        events.clear()
    finally:
        if stream is not None and stream is not sys.stdout.buffer:
            stream.close()
        elif stream is not None:
            stream.flush()
    write_summary(summary_out, pipeline, counts, len(options.captures),
                  time.perf_counter() - started)
    return status


def _open_eve(eve: str | None) -> BinaryIO | None:
    if eve is None:
        return None
    if eve == "-":
        return sys.stdout.buffer
    return open(eve, "wb", buffering=1 << 20)

"""Shared test helpers: paths, and running the pipeline over a capture file."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

# Compiled-blocklist and remote-list caches go to a directory of this test run, never
# to the user's own ~/.cache (set before sensor is imported; subprocesses inherit it).
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="madoc-test-cache-")
os.environ.pop("CACHE_DIRECTORY", None)

from sensor.blocklist.loader import load_blocklist
from sensor.core.events import DnsEvent, FlowEnd, Hit, HttpEvent, QuicEvent, TlsEvent
from sensor.core.pipeline import Pipeline
from sensor.sources.pcapfile import CaptureFile

ROOT = Path(__file__).resolve().parent.parent
PCAPS = ROOT / "pcaps"
REAL_CAPTURES = ROOT / "tests" / "captures"     # others' captures: SOURCES.md
RULES = ROOT / "rules" / "rules.yaml"


@dataclass
class Outcome:
    pipeline: Pipeline
    dns: list[DnsEvent] = field(default_factory=list)
    flows: list[FlowEnd] = field(default_factory=list)
    hits: list[Hit] = field(default_factory=list)
    tls: list[TlsEvent] = field(default_factory=list)
    quic: list[QuicEvent] = field(default_factory=list)
    http: list[HttpEvent] = field(default_factory=list)


def run_pipeline(paths: list[Path], rules: list[Path] | None = None,
                 bpf_filter: str | None = None) -> Outcome:
    blocklist = load_blocklist(rules)[0] if rules else None
    outcome = Outcome(Pipeline(blocklist))
    pipeline = outcome.pipeline

    def drain() -> None:
        for event in pipeline.events:
            if isinstance(event, DnsEvent):
                outcome.dns.append(event)
            elif isinstance(event, FlowEnd):
                outcome.flows.append(event)
            elif isinstance(event, TlsEvent):
                outcome.tls.append(event)
            elif isinstance(event, QuicEvent):
                outcome.quic.append(event)
            elif isinstance(event, HttpEvent):
                outcome.http.append(event)
            else:
                outcome.hits.append(event)
        pipeline.events.clear()

    for path in paths:
        capture = CaptureFile(path, bpf_filter)
        for data, records, link in capture.batches():
            pipeline.feed_batch(data, records, link)
            drain()
    pipeline.finish()
    drain()
    return outcome


def proc_status(pid: int | str, field: str) -> str:
    """A field of /proc/PID/status as written there (`self`: this process)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"/proc/{pid}/status has no {field}")


def memory_kib(pid: int | str, field: str = "VmHWM") -> int:
    """A process's resident memory (VmRSS) or its peak (VmHWM), in KiB."""
    return int(proc_status(pid, field).split()[0])


def examples(count: int) -> int:
    """Hypothesis examples for a property test: a tenth under `make mutate`
    (MADOC_MUTATION=1), which runs the tests again for each of thousands of mutants."""
    return max(30, count // 10) if os.environ.get("MADOC_MUTATION") else count


def planted_hits() -> dict[str, list[dict]]:
    """Every hit the bundled captures were made with, per capture file
    (pcaps/expected-hits.json, written by pcaps/make_pcaps.py as it makes them)."""
    return json.loads((PCAPS / "expected-hits.json").read_text())


def planted_infected(*files: str) -> dict[str, tuple[int, int]]:
    """Host → (hits, distinct indicators) of each host the bundled captures (or the
    named ones) were made to show infected: an inbound hit, a listed address reaching
    in, makes none (docs/report.md)."""
    hits: dict[str, list[str]] = {}
    for name, planted in planted_hits().items():
        for hit in planted if not files or name in files else ():
            if hit["match"] != "flow.src_ip":
                hits.setdefault(hit["host"], []).append(hit["indicator"])
    return {host: (len(found), len(set(found))) for host, found in hits.items()}


def demo_captures() -> list[Path]:
    return sorted(p for p in PCAPS.iterdir() if p.suffix in (".pcap", ".pcapng"))


def tunnel_captures() -> list[Path]:
    """Captures of tunnelled traffic (pcaps/tunnels/, made by pcaps/make_pcaps.py, and the
    kernel's VXLAN made by pcaps/capture_vxlan.py)."""
    return sorted((PCAPS / "tunnels").glob("*.pcap"))


def real_captures() -> list[Path]:
    """Captures made by other people (tests/captures/SOURCES.md)."""
    return sorted(p for p in REAL_CAPTURES.iterdir() if p.suffix in (".pcap", ".pcapng"))


ALLOWED_SKIPS = ROOT / "tests" / "allowed-skips.txt"


def allowed_skips() -> dict[str, str]:
    """The reviewed list of tests that may skip in CI: `NODE_ID  # why`, one a line."""
    allowed = {}
    for line in ALLOWED_SKIPS.read_text(encoding="utf-8").splitlines():
        node, _, why = line.partition("#")
        if node.strip():
            allowed[node.strip()] = why.strip()
    return allowed


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> object:
    """Keep each phase's report on the test item (`item.report_call`), for fixtures
    that save evidence when the test failed (the browser test's page). Under CI=true a
    skip is a failure unless tests/allowed-skips.txt names the test: there, a tool that
    is missing or fails is a broken install step, not a reason to pass."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get("CI") == "true" and not hasattr(report, "wasxfail") \
            and item.nodeid not in allowed_skips():
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = (f"skipped in CI, which allows no skip but those of "
                           f"{ALLOWED_SKIPS.relative_to(ROOT)}: {reason}")
    setattr(item, f"report_{report.when}", report)

"""Hot reload of the blocklists: watch, rebuild in the background, hand over whole.

`RulesReloader.poll()` is called between batches by whoever runs the packet
loop (replay today, the daemon later). It notices a request (SIGHUP) or a
changed modification time of the rules file or any list file (checked every
`period` seconds), then compiles a complete new `Blocklist` in a background
thread. The packet loop keeps using the old one until `poll()` returns the
new one, which the caller swaps in between two batches: no packet is ever
matched against a half-built blocklist. A reload that fails (bad YAML, a
source that cannot be read or yields nothing) keeps the old blocklist and
says why; so does the first load's report for sources that were bad then.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

from sensor.blocklist.cache import load_cached
from sensor.blocklist.loader import DEFAULT_CACHE_DIR, LoadReport, RulesError, read_sources
from sensor.blocklist.matcher import Blocklist
from sensor.support import gcpolicy


@dataclass
class ReloadStatus:
    """What the metrics expose: counts, last success, and per-source sizes."""

    reloads: int = 0
    failures: int = 0
    last_success: float = 0.0          # wall-clock time of the last good (re)load
    last_error: str = ""
    source_entries: dict[str, int] = field(default_factory=dict)


class RulesReloader:
    def __init__(self, rules_paths: list[Path], period: float = 5.0,
                 cache_dir: Path = DEFAULT_CACHE_DIR,
                 wall_clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.rules_paths = rules_paths
        self.period = period
        self.cache_dir = cache_dir
        self.status = ReloadStatus()
        self._wall_clock = wall_clock
        self._monotonic = monotonic
        self._requested = threading.Event()
        self._next_check = monotonic() + period
        self._stamps = self._modification_times()
        self._builder: threading.Thread | None = None
        self._result: tuple[Blocklist | None, LoadReport | None, str] | None = None

    def loaded(self, report: LoadReport) -> None:
        """Record the first load (done by the caller, before packets flow)."""
        self.status.last_success = self._wall_clock()
        self.status.source_entries = {s.source.name: s.entries for s in report.sources}

    def request(self) -> None:
        """Ask for a reload at the next poll (safe to call from a signal handler)."""
        self._requested.set()

    def _watched_files(self) -> list[Path]:
        files = list(self.rules_paths)
        for path in self.rules_paths:
            with suppress(RulesError):      # the rules file itself is watched: fixing it reloads
                files += [source.path for source in read_sources(path)]
        return files

    def _modification_times(self) -> dict[Path, float]:
        stamps = {}
        for path in self._watched_files():
            try:
                stamps[path] = path.stat().st_mtime_ns
            except OSError:
                stamps[path] = -1
        return stamps

    def poll(self) -> Blocklist | None:
        """A newly compiled blocklist when one is ready, else None. Cheap when idle."""
        if self._result is not None:
            return self._finish()
        if self._builder is not None:
            return None
        now = self._monotonic()
        if not self._requested.is_set() and now < self._next_check:
            return None
        self._next_check = now + self.period
        stamps = self._modification_times()
        if stamps == self._stamps and not self._requested.is_set():
            return None
        self._requested.clear()
        self._stamps = stamps
        self._builder = threading.Thread(target=self._build, name="rules-reload", daemon=True)
        self._builder.start()
        return None

    def apply(self, swap: Callable[[Blocklist], None], reloaded: Callable[[str], None],
              failed: Callable[[str], None]) -> None:
        """Poll, and hand a newly compiled blocklist to `swap`; tell `reloaded` or `failed`
        what happened (the packet loop's own words go around them)."""
        failures = self.status.failures
        blocklist = self.poll()
        if blocklist is not None:
            swap(blocklist)
            gcpolicy.settle(collect=False)
            reloaded(f"rules reloaded ({sum(self.status.source_entries.values()):,} entries)")
        elif self.status.failures > failures:
            failed(f"rules reload failed, keeping the previous blocklist: "
                   f"{self.status.last_error}")

    def wait(self) -> Blocklist | None:
        """Block until a build under way ends (tests, shutdown); then as `poll`."""
        if self._builder is not None:
            self._builder.join()
        return self.poll()

    def _build(self) -> None:
        try:
            blocklist, report, _ = load_cached(self.rules_paths, self.cache_dir)
        except RulesError as err:
            self._result = (None, None, str(err))
            return
        failed = [f"{s.source.name}: {s.error}" for s in report.sources if s.error]
        self._result = (None if failed else blocklist, report, "; ".join(failed))

    def _finish(self) -> Blocklist | None:
        blocklist, report, error = self._result
        self._result = None
        self._builder = None
        if blocklist is None:
            self.status.failures += 1
            self.status.last_error = error
            return None
        self.status.reloads += 1
        self.status.last_error = ""
        self.loaded(report)
        return blocklist

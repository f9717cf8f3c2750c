"""A one-line progress bar for `madoc-sensor replay` on a terminal.

Drawn on stderr at most five times a second, with carriage returns, and wiped
before the summary; replay makes one only when stderr is a terminal, so logs and
pipes never get one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO

BAR_WIDTH = 24
REDRAW_SECONDS = 0.2


def _megabytes(count: int) -> str:
    return f"{count / 1e6:,.1f}"


def format_progress(done: int, total: int, packets: int, seconds: float, name: str) -> str:
    """`[=======>     ]  42%  12.3/29.0 MB  185,004 pkt/s  office.pcap`."""
    share = min(done / total, 1.0) if total else 1.0
    filled = int(share * BAR_WIDTH)
    bar = "=" * filled + (">" if filled < BAR_WIDTH else "") + " " * (BAR_WIDTH - filled - 1)
    rate = f"{packets / seconds:,.0f}" if seconds > 0 else "-"
    return (f"[{bar[:BAR_WIDTH]}] {share:4.0%}  {_megabytes(done)}/{_megabytes(total)} MB  "
            f"{rate} pkt/s  {name}")


class Progress:
    def __init__(self, stream: TextIO, total: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream
        self.total = total
        self.clock = clock
        self.started = clock()
        self._next_draw = self.started
        self._width = 0

    def update(self, done: int, packets: int, name: str) -> None:
        now = self.clock()
        if now < self._next_draw:
            return
        self._next_draw = now + REDRAW_SECONDS
        line = format_progress(done, self.total, packets, now - self.started, name)
        self.stream.write("\r" + line.ljust(self._width))
        self.stream.flush()
        self._width = len(line)

    def close(self) -> None:
        """Wipe the line, so what follows starts on a clean one."""
        if self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._width = 0

"""What every live capture backend shares: its interface (`LiveCapture`), its
counters, the fanout group it may join, and waiting on several of them at once."""

from __future__ import annotations

import select
from dataclasses import dataclass
from typing import Protocol, TypeVar

from sensor.core.decode.link import LinkDecoder
from sensor.sources.pcapfile import Batch

READ_TIMEOUT_MS = 100
Fanout = tuple[int, bytes]          # (group id, the host-keyed fanout program)


@dataclass
class CaptureStats:
    received: int = 0        # packets that passed the filter
    dropped: int = 0         # dropped by the kernel: the ring was full
    interface_dropped: int = 0


class LiveCapture(Protocol):
    interface: str
    fd: int
    link: LinkDecoder

    def read(self) -> Batch | None: ...
    def stats(self) -> CaptureStats: ...
    def close(self) -> None: ...


class Readable(Protocol):
    fd: int


S = TypeVar("S", bound=Readable)


def wait_readable(sources: list[S], timeout: float) -> list[S]:
    """The sources (captures, the conntrack socket) with data waiting, after at most
    `timeout` seconds."""
    by_fd = {source.fd: source for source in sources}
    try:
        ready, _, _ = select.select(list(by_fd), [], [], timeout)
    except InterruptedError:
        return []
    return [by_fd[fd] for fd in ready]

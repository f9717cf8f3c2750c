"""systemd's side of the notify protocol, for tests: a datagram socket whose path goes in
$NOTIFY_SOCKET, collecting the messages the service sends."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable
from pathlib import Path


class NotifySocket:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.socket.bind(str(path))
        path.chmod(0o666)       # as systemd's: the service user writes to it
        self.socket.settimeout(0.2)
        self.messages: list[str] = []

    def seen(self, message: str, count: int = 1) -> bool:
        """Whether `count` of the messages so far carry `message` (a line of its own)."""
        return sum(m.startswith(message) or f"\n{message}" in m
                   for m in self.messages) >= count

    def wait_for(self, message: str, timeout: float, exited: Callable[[], bool],
                 log: Callable[[], str], count: int = 1) -> None:
        """Wait for `count` messages starting with `message` (READY=1, STOPPING=1…);
        fail early, with the service's log, when it exits before READY=1."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.seen(message, count):
                return
            if exited() and message == "READY=1":
                raise AssertionError(f"exited before READY=1: {log()[-3000:]}")
            with contextlib.suppress(TimeoutError):
                self.messages.append(self.socket.recv(4096).decode())
        raise AssertionError(f"no {message} in {timeout} s: {log()[-3000:]}")

    def close(self) -> None:
        """Keep what was sent until now, then remove the socket."""
        self.socket.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            while True:
                self.messages.append(self.socket.recv(4096).decode())
        self.socket.close()
        self.path.unlink(missing_ok=True)

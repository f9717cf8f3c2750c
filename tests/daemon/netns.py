"""Network namespaces, veth pairs and a daemon under test, made and removed by each test.

`Wire` is two namespaces joined by a veth pair: frames sent into one end (by
tcpreplay or scapy, inside namespace `a`) arrive at the other end, where the
daemon captures (inside namespace `b`). IPv6 is off on both ends so the kernel's
own router solicitations do not join the traffic; nothing leaves the namespaces.
`SensorProcess` runs `madoc-sensor run` in namespace `b` and waits for systemd's
READY=1 on a notify socket of its own, as systemd would.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT

CLONE_NEWNET = 0x40000000
_counter = itertools.count()


def _run(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, text=True)


def require_netns() -> None:
    """Skip, saying why, where namespaces cannot be made (CI runs as root and has them)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to make network namespaces and veth pairs (CI runs as root)")
    for tool in ("ip", "tcpreplay"):
        if subprocess.run(["which", tool], capture_output=True).returncode:
            pytest.skip(f"needs {tool}")
    probe = f"madoc-probe-{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode:
        pytest.skip(f"cannot make network namespaces here: {made.stderr.strip()}")
    _run("ip", "netns", "delete", probe)


class Wire:
    def __init__(self) -> None:
        tag = f"{os.getpid() % 100000}-{next(_counter)}"
        self.a, self.b = f"madoc-a-{tag}", f"madoc-b-{tag}"
        self.end_a, self.end_b = "wa", "wb"

    def __enter__(self) -> Wire:
        require_netns()
        _run("ip", "netns", "add", self.a)
        _run("ip", "netns", "add", self.b)
        _run("ip", "link", "add", self.end_a, "netns", self.a, "type", "veth", "peer", "name",
             self.end_b, "netns", self.b)
        for ns, end in ((self.a, self.end_a), (self.b, self.end_b)):
            _run("ip", "netns", "exec", ns, "sysctl", "-q", "-w",
                 "net.ipv6.conf.all.disable_ipv6=1")
            _run("ip", "netns", "exec", ns, "sysctl", "-q", "-w",
                 "net.ipv6.conf.default.disable_ipv6=1")
            _run("ip", "-n", ns, "link", "set", end, "mtu", "9000", "up")
            _run("ip", "-n", ns, "link", "set", "lo", "up")
        return self

    def __exit__(self, *_: object) -> None:
        for ns in (self.a, self.b):
            subprocess.run(["ip", "netns", "delete", ns], capture_output=True)

    def replay(self, *captures: Path, pps: int | None = None) -> str:
        """Send capture files into end a (top speed unless `pps`); tcpreplay's summary."""
        rate = ["--pps", str(pps)] if pps else ["--topspeed"]
        done = subprocess.run(["ip", "netns", "exec", self.a, "tcpreplay", "-i", self.end_a,
                               *rate, *map(str, captures)],
                              capture_output=True, text=True, check=True)
        return done.stdout

    def send_scapy(self, code: str) -> None:
        """Run scapy code in namespace a with `iface` bound to end a."""
        program = f"from scapy.all import *\niface = {self.end_a!r}\n{code}\n"
        subprocess.run(["ip", "netns", "exec", self.a, sys.executable, "-c", program],
                       check=True, capture_output=True, text=True, cwd=ROOT)

    @contextlib.contextmanager
    def inside_b(self) -> Iterator[None]:
        """Run this thread (and the processes it starts) in namespace b: the daemon's
        loopback, where a collector can listen for it."""
        libc = ctypes.CDLL(None, use_errno=True)
        original = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open(f"/run/netns/{self.b}", os.O_RDONLY)
        try:
            assert libc.setns(target, CLONE_NEWNET) == 0, os.strerror(ctypes.get_errno())
            yield
        finally:
            libc.setns(original, CLONE_NEWNET)
            os.close(original)
            os.close(target)


class SensorProcess:
    """`madoc-sensor run -c CONFIG` in namespace b of `wire`."""

    def __init__(self, wire: Wire, config: Path, *extra: str) -> None:
        self.wire = wire
        self.log = config.parent / f"sensor-{next(_counter)}.log"
        self.notify_path = config.parent / f"notify-{next(_counter)}.sock"
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(str(self.notify_path))
        self.notify_path.chmod(0o666)       # as systemd's: the service user writes to it
        self.notify.settimeout(0.2)
        self.messages: list[str] = []
        env = dict(os.environ, NOTIFY_SOCKET=str(self.notify_path), PYTHONUNBUFFERED="1")
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                ["ip", "netns", "exec", wire.b, sys.executable, "-m", "sensor", "run",
                 "-c", str(config), *extra],
                stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=env)

    def wait_for(self, message: str, timeout: float = 30.0) -> None:
        """Wait for a notify message starting with `message` (READY=1, STOPPING=1…)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(m.startswith(message) or f"\n{message}" in m for m in self.messages):
                return
            if self.process.poll() is not None and message == "READY=1":
                raise AssertionError(f"sensor exited: {self.log.read_text()[-3000:]}")
            with contextlib.suppress(TimeoutError):
                self.messages.append(self.notify.recv(4096).decode())
        raise AssertionError(f"no {message} from the sensor in {timeout} s: "
                             f"{self.log.read_text()[-3000:]}")

    def wait_log(self, text: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log.read_text():
                return
            time.sleep(0.1)
        raise AssertionError(f"{text!r} not logged in {timeout} s: "
                             f"{self.log.read_text()[-3000:]}")

    def signal(self, signum: int) -> None:
        """Signal the daemon (ip netns exec execs it, so the pid is the daemon's)."""
        self.process.send_signal(signum)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, wait for the exit; keeps the notify messages sent until then."""
        self.signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        finally:
            self.notify.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                while True:
                    self.messages.append(self.notify.recv(4096).decode())
            self.notify.close()
            self.notify_path.unlink(missing_ok=True)

    @property
    def output(self) -> str:
        return self.log.read_text()

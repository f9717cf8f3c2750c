"""Network namespaces, veth pairs and a daemon under test, made and removed by each test.

`Wire` is two namespaces joined by a veth pair: frames sent into one end (by
tcpreplay or scapy, inside namespace `a`) arrive at the other end, where the
daemon captures (inside namespace `b`). IPv6 is off on both ends so the kernel's
own router solicitations do not join the traffic; nothing leaves the namespaces.
`Office` is three: a host on the office LAN, the office's router (where a
gateway-mode sensor runs, conntrack on) and "the Internet", all made up.
`SensorProcess` runs `madoc-sensor run` in a namespace and waits for systemd's
READY=1 on a notify socket of its own, as systemd would.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.collector.harness import Samples, parse_metrics
from tests.conftest import ROOT
from tests.notify import NotifySocket

CLONE_NEWNET = 0x40000000
DEFAULT_METRICS_PORT = 9570         # sensor.yaml's default metrics.listen, 127.0.0.1
_counter = itertools.count()


def _run(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, text=True)


def require_netns(*tools: str) -> None:
    """Skip, saying why, where root or a tool is missing (outside CI: under CI a skip
    fails, tests/conftest.py); a tool that is there but fails fails the test with its
    own error."""
    if os.geteuid() != 0:
        pytest.skip("needs root to make network namespaces and veth pairs (CI runs as root)")
    for tool in ("ip", "tcpreplay", *tools):
        if subprocess.run(["which", tool], capture_output=True).returncode:
            pytest.skip(f"needs {tool}")
    probe = f"madoc-probe-{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode:
        pytest.fail(f"ip netns add {probe} failed: {made.stderr.strip()}")
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

    def inside_b(self) -> contextlib.AbstractContextManager[None]:
        return inside(self.b)

    def wait_captured(self, packets: int, port: int = DEFAULT_METRICS_PORT) -> None:
        """Wait until the daemon in b has taken `packets` frames off its ring, as its
        /metrics say (the default metrics address, on b's loopback): sent frames are
        in the daemon, not on their way, when this returns."""
        samples = scrape_until(self.b, f"http://127.0.0.1:{port}/metrics", lambda got: got.get(
            ("madoc_captured_packets_total", ())) == packets)
        assert samples.get(("madoc_captured_packets_total", ())) == packets, samples


class VxlanWire(Wire):
    """A Wire whose veth is the underlay (10.99.0.1 in a, 10.99.0.2 in b) of a real
    kernel VXLAN tunnel (VNI 42, UDP 4789) between the namespaces: 192.168.77.10 in a,
    192.168.77.1 in b, and the made-up Internet 203.0.113.0/24 routed through the
    tunnel from a. Traffic in a comes from real tools: glibc's resolver (`getent`, with
    a resolv.conf of a's own naming 192.168.77.1) and bash's /dev/tcp. A sensor on end b
    sees what a mirror session tunnelled to it by VXLAN looks like."""

    HOST, RESOLVER = "192.168.77.10", "192.168.77.1"
    UNDERLAY = ("10.99.0.1", "10.99.0.2")

    def __enter__(self) -> VxlanWire:
        self.resolv = Path("/etc/netns") / self.a / "resolv.conf"
        super().__enter__()
        for ns, end, local, remote, inner in (
                (self.a, self.end_a, *self.UNDERLAY, self.HOST),
                (self.b, self.end_b, *reversed(self.UNDERLAY), self.RESOLVER)):
            _run("ip", "-n", ns, "addr", "add", f"{local}/24", "dev", end)
            made = subprocess.run(["ip", "-n", ns, "link", "add", "vx0", "type", "vxlan", "id",
                                   "42", "local", local, "remote", remote, "dstport", "4789",
                                   "dev", end], capture_output=True, text=True)
            if made.returncode:
                self.__exit__()
                pytest.fail(f"ip link add vx0 type vxlan failed: {made.stderr.strip()}")
            _run("ip", "-n", ns, "addr", "add", f"{inner}/24", "dev", "vx0")
            _run("ip", "-n", ns, "link", "set", "vx0", "up")
        _run("ip", "-n", self.a, "route", "add", "203.0.113.0/24", "via", self.RESOLVER)
        self.resolv.parent.mkdir(parents=True, exist_ok=True)
        self.resolv.write_text(f"nameserver {self.RESOLVER}\noptions timeout:1 attempts:1\n")
        return self

    def __exit__(self, *_: object) -> None:
        with contextlib.suppress(OSError):
            self.resolv.unlink()
            self.resolv.parent.rmdir()
        super().__exit__()

    def infected_host(self) -> None:
        """From a, through the tunnel: `getent hosts malhost.example` (glibc asks the
        resolver, which does not answer: the query is what the sensor matches), then a
        TCP connection attempt to the listed 203.0.113.9 (no one answers either)."""
        subprocess.run(["ip", "netns", "exec", self.a, "getent", "hosts", "malhost.example"],
                       capture_output=True, timeout=30)
        subprocess.run(["ip", "netns", "exec", self.a, "timeout", "2", "bash", "-c",
                        "exec 3<>/dev/tcp/203.0.113.9/443"], capture_output=True)

    @contextlib.contextmanager
    def recording(self, path: Path) -> Iterator[None]:
        """tcpdump on end b (the underlay) writing `path` while the block runs, and
        until all the block sent is in the file."""
        tcpdump = subprocess.Popen(["ip", "netns", "exec", self.b, "tcpdump", "-i", self.end_b,
                                    "-w", str(path), "-U", "--immediate-mode"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            assert tcpdump.stderr is not None and "listening" in tcpdump.stderr.readline()
            yield
            # A last datagram over the underlay: once tcpdump has written it (-U writes
            # each packet as it comes), every frame before it is in the file.
            mark = f"madoc-end-of-recording-{self.a}".encode()
            _run("ip", "netns", "exec", self.a, "bash", "-c",
                 f"echo -n {mark.decode()} > /dev/udp/{self.UNDERLAY[1]}/9")
            deadline = time.monotonic() + 10
            while mark not in path.read_bytes():
                assert time.monotonic() < deadline, "tcpdump did not write the last datagram"
                time.sleep(0.05)
        finally:
            tcpdump.terminate()
            tcpdump.wait(10)


def scrape(url: str) -> Samples:
    """(sample name, sorted labels) → value."""
    with urllib.request.urlopen(url, timeout=10) as answer:
        assert answer.headers["Content-Type"].startswith("text/plain")
        return parse_metrics(answer.read().decode())


def scrape_until(namespace: str, url: str, done: Callable[[Samples], bool],
                 timeout: float = 30.0) -> Samples:
    """Scrape inside `namespace` until `done(samples)` (the daemon's loop copies the
    workers' figures once a second); the last scrape when the deadline passes, for the
    test's own assertions to say what is missing."""
    deadline = time.monotonic() + timeout
    while True:
        with inside(namespace):
            samples = scrape(url)
        if done(samples) or time.monotonic() > deadline:
            return samples
        time.sleep(0.2)


@contextlib.contextmanager
def inside(namespace: str) -> Iterator[None]:
    """Run this thread (and the processes it starts) in `namespace`: e.g. the daemon's
    loopback, where a collector can listen for it."""
    libc = ctypes.CDLL(None, use_errno=True)
    original = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{namespace}", os.O_RDONLY)
    try:
        assert libc.setns(target, CLONE_NEWNET) == 0, os.strerror(ctypes.get_errno())
        yield
    finally:
        libc.setns(original, CLONE_NEWNET)
        os.close(original)
        os.close(target)


# The router's firewall: one rule that needs connection tracking, as NAT or any stateful
# rule does on a real gateway (the kernel tracks connections in a namespace only then).
_FIREWALL = """table inet madoc_test {
  chain forward_hook {
    type filter hook forward priority 0;
    ct state new counter
  }
}
"""


class Office:
    """lan (a host, 10.9.1.2) ── gw (the router: LAN 10.9.1.1 on `gw-lan`, WAN
    203.0.113.1 on `gw-wan`, forwarding, conntrack on) ── wan (servers at 203.0.113.9
    and 203.0.113.77). Made for one test and removed after it."""

    HOST, SERVER, OTHER_SERVER = "10.9.1.2", "203.0.113.9", "203.0.113.77"
    LAN_INTERFACE = "gw-lan"

    def __init__(self) -> None:
        tag = f"{os.getpid() % 100000}-{next(_counter)}"
        self.lan, self.gw, self.wan = (f"madoc-{part}-{tag}" for part in ("lan", "gw", "wan"))

    def __enter__(self) -> Office:
        require_netns("nft", "conntrack")
        for ns in (self.lan, self.gw, self.wan):
            _run("ip", "netns", "add", ns)
            for setting in ("all", "default"):
                _run("ip", "netns", "exec", ns, "sysctl", "-q", "-w",
                     f"net.ipv6.conf.{setting}.disable_ipv6=1")
            _run("ip", "-n", ns, "link", "set", "lo", "up")
        _run("ip", "link", "add", "lan0", "netns", self.lan, "type", "veth", "peer", "name",
             "gw-lan", "netns", self.gw)
        _run("ip", "link", "add", "gw-wan", "netns", self.gw, "type", "veth", "peer", "name",
             "wan0", "netns", self.wan)
        for ns, link, address in ((self.lan, "lan0", "10.9.1.2/24"),
                                  (self.gw, "gw-lan", "10.9.1.1/24"),
                                  (self.gw, "gw-wan", "203.0.113.1/24"),
                                  (self.wan, "wan0", "203.0.113.9/24"),
                                  (self.wan, "wan0", "203.0.113.77/32")):
            _run("ip", "-n", ns, "addr", "add", address, "dev", link)
            _run("ip", "-n", ns, "link", "set", link, "up")
        _run("ip", "-n", self.lan, "route", "add", "default", "via", "10.9.1.1")
        _run("ip", "-n", self.wan, "route", "add", "10.9.1.0/24", "via", "203.0.113.1")
        _run("ip", "netns", "exec", self.gw, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
        subprocess.run(["ip", "netns", "exec", self.gw, "nft", "-f", "-"], input=_FIREWALL,
                       check=True, capture_output=True, text=True)
        return self

    def __exit__(self, *_: object) -> None:
        for ns in (self.lan, self.gw, self.wan):
            subprocess.run(["ip", "netns", "delete", ns], capture_output=True)

    def start(self, namespace: str, program: str) -> subprocess.Popen:
        """A Python program running in `namespace` (servers); the caller stops it."""
        return subprocess.Popen(["ip", "netns", "exec", namespace, sys.executable, "-c",
                                 program], cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)

    def run(self, namespace: str, program: str) -> str:
        done = subprocess.run(["ip", "netns", "exec", namespace, sys.executable, "-c",
                               program], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def host_mac(self) -> str:
        return subprocess.run(["ip", "netns", "exec", self.lan, "cat",
                               "/sys/class/net/lan0/address"], check=True,
                              capture_output=True, text=True).stdout.strip()


class SensorProcess:
    """`madoc-sensor run -c CONFIG` in `namespace`."""

    def __init__(self, namespace: str, config: Path, *extra: str) -> None:
        self.log = config.parent / f"sensor-{next(_counter)}.log"
        self.notify = NotifySocket(config.parent / f"notify-{next(_counter)}.sock")
        self.messages = self.notify.messages
        env = dict(os.environ, NOTIFY_SOCKET=str(self.notify.path), PYTHONUNBUFFERED="1")
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                ["ip", "netns", "exec", namespace, sys.executable, "-m", "sensor", "run",
                 "-c", str(config), *extra],
                stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=env)

    def wait_for(self, message: str, timeout: float = 30.0) -> None:
        """Wait for a notify message starting with `message` (READY=1, STOPPING=1…)."""
        self.notify.wait_for(message, timeout, lambda: self.process.poll() is not None,
                             self.log.read_text)

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
            self.notify.close()

    @property
    def output(self) -> str:
        return self.log.read_text()

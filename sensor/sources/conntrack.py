"""The kernel's conntrack NEW and DESTROY events, over ctnetlink (gateway mode).

A netlink socket joined to the two multicast groups is opened while the
daemon is still root; datagrams are decoded by `core/decode/ctnetlink.py` into
`ConntrackEvent`s for the pipeline. The socket is non-blocking and
waited on with select(), like the captures. When the receive buffer
overflows the kernel says so (ENOBUFS): those events are lost, counted and
reported; connections whose NEW was lost are still ended (and checked) at
their DESTROY.

`current()` dumps the table through pyroute2 (needs CAP_NET_ADMIN, which the
daemon keeps in this mode) so that flows still open when the sensor stops end
with their real counts. `enable_accounting` turns on the per-connection counters and
timestamps (`net.netfilter.nf_conntrack_acct`, `nf_conntrack_timestamp`).
"""

from __future__ import annotations

import errno
import logging
import socket
from pathlib import Path

from pyroute2 import NFCTSocket
from pyroute2.netlink import NETLINK_NETFILTER
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.nfnetlink import NFNLGRP_CONNTRACK_DESTROY, NFNLGRP_CONNTRACK_NEW

from sensor.core.conntrack_flows import ConntrackEvent
from sensor.core.decode.ctnetlink import decode_conntrack

log = logging.getLogger("madoc.sensor")
SYSCTL = Path("/proc/sys/net/netfilter")
_GROUPS = (1 << (NFNLGRP_CONNTRACK_NEW - 1)) | (1 << (NFNLGRP_CONNTRACK_DESTROY - 1))
_SO_RCVBUFFORCE = 33
_IPV6_LOOPBACK = socket.inet_pton(socket.AF_INET6, "::1")
MAX_READS_PER_STEP = 64


class ConntrackUnavailable(RuntimeError):
    """The kernel cannot give conntrack events here; the message says what to do."""


def enable_accounting() -> list[str]:
    """Turn on conntrack byte counters and timestamps; the settings changed."""
    changed = []
    for name in ("nf_conntrack_acct", "nf_conntrack_timestamp"):
        path = SYSCTL / name
        try:
            if path.read_text().strip() != "1":
                path.write_text("1\n")
                changed.append(f"net.netfilter.{name}=1")
        except OSError as err:
            log.warning("cannot turn on net.netfilter.%s (%s): flows from conntrack will "
                        "have no byte counts", name, err.strerror)
    return changed


class ConntrackSource:
    def __init__(self, receive_buffer_mib: int = 8) -> None:
        if not (SYSCTL / "nf_conntrack_acct").exists():
            raise ConntrackUnavailable(
                "mode: gateway needs the kernel's connection tracking (nf_conntrack), which "
                "is not loaded: modprobe nf_conntrack nf_conntrack_netlink, or use "
                "mode: capture")
        try:
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        except OSError as err:
            raise ConntrackUnavailable(f"no netfilter netlink in this kernel ({err.strerror});"
                                       f" use mode: capture") from None
        try:
            sock.bind((0, _GROUPS))
            try:
                sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, receive_buffer_mib << 20)
            except PermissionError:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer_mib << 20)
        except OSError as err:
            sock.close()
            hint = " (needs root or CAP_NET_ADMIN)" if err.errno == errno.EPERM else ""
            raise ConntrackUnavailable(f"cannot listen to conntrack events: {err.strerror}"
                                       f"{hint}") from None
        sock.setblocking(False)
        self._socket = sock
        self.fd = sock.fileno()
        self.overruns = 0           # times the kernel dropped events (receive buffer full)
        self.accounting = (SYSCTL / "nf_conntrack_acct").read_text().strip() == "1"

    def read(self) -> list[ConntrackEvent]:
        events: list[ConntrackEvent] = []
        for _ in range(MAX_READS_PER_STEP):
            try:
                data = self._socket.recv(1 << 20)
            except BlockingIOError:
                break
            except OSError as err:
                if err.errno != errno.ENOBUFS:
                    raise
                self.overruns += 1
                log.warning("conntrack events lost: the receive buffer overflowed (raise "
                            "sensor.conntrack.receive_buffer_mib)")
                continue
            events.extend(parse_messages(data))
        return events

    def current(self) -> dict[int, ConntrackEvent]:
        """The table as it is now, by conntrack id; empty if it cannot be read."""
        table: dict[int, ConntrackEvent] = {}
        try:
            for family in (socket.AF_INET, socket.AF_INET6):
                with NFCTSocket(nfgen_family=family) as ct:
                    for msg in ct.dump():
                        raw = msg.data[msg.offset:msg.offset + msg["header"]["length"]]
                        table.update((e.ct_id, e) for e in parse_messages(raw))
        except (NetlinkError, OSError) as err:
            log.warning("cannot read the conntrack table (%s); open flows end without "
                        "their last counts", err)
        return table

    def close(self) -> None:
        self._socket.close()


def parse_messages(data: bytes) -> list[ConntrackEvent]:
    """The events in one netlink datagram, but the gateway's own loopback connections
    (no flow through it)."""
    return [event for event in decode_conntrack(data) if not _loopback(event.endpoints.src)]


def _loopback(addr: bytes) -> bool:
    return addr == _IPV6_LOOPBACK or (len(addr) == 4 and addr[0] == 127)

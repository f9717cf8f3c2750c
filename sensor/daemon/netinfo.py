"""What the gateway's kernel knows about the networks, read over netlink (pyroute2).

- `auto_internal_networks`: the private ranges, plus every network that is
  connected to or routed through an interface other than the one carrying the
  default route (the WAN side). An office on public addresses is thus internal
  without configuration; on a mirror-port box with no LAN address it is the
  private ranges alone, and `internal_networks:` should list the office's.
- `NeighbourTable`: IP → MAC from the ARP/NDP table, refreshed periodically;
  the uplink sends the MAC so the collector can follow a host whose IP changes.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import time

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from sensor.core.detect import DEFAULT_INTERNAL_NETWORKS

log = logging.getLogger("madoc.sensor")
# NUD_REACHABLE | NUD_STALE | NUD_DELAY | NUD_PROBE | NUD_PERMANENT: a MAC we can trust
_USABLE_STATES = 0x02 | 0x04 | 0x08 | 0x10 | 0x80
_NO_MAC = "00:00:00:00:00:00"


def auto_internal_networks() -> list[str]:
    networks = list(DEFAULT_INTERNAL_NETWORKS)
    with IPRoute() as ipr:
        routes = list(ipr.get_routes(table=254))
        loopback = {link["index"] for link in ipr.get_links() if link["flags"] & 0x8}
    wan = {route.get_attr("RTA_OIF") for route in routes
           if route["dst_len"] == 0 and route.get_attr("RTA_OIF") is not None}
    for route in routes:
        dst, oif = route.get_attr("RTA_DST"), route.get_attr("RTA_OIF")
        if dst is None or route["dst_len"] == 0 or oif in wan or oif in loopback:
            continue
        network = ipaddress.ip_network(f"{dst}/{route['dst_len']}", strict=False)
        if not (network.is_link_local or network.is_multicast):
            networks.append(str(network))
    return list(dict.fromkeys(networks))


class NeighbourTable:
    """IP (packed bytes, as in events) → MAC text, from the kernel's neighbour table.

    Read every `refresh_seconds`, and sooner (at most every `miss_seconds`) when asked
    for an address it lacks: a host that just appeared is usually in the kernel's
    table by the time its first hit is sent."""

    def __init__(self, refresh_seconds: float = 30.0, miss_seconds: float = 1.0) -> None:
        self.refresh_seconds = refresh_seconds
        self.miss_seconds = miss_seconds
        self._macs: dict[bytes, str] = {}
        self._next = 0.0
        self._read_at = 0.0
        self.refresh()

    def refresh(self) -> None:
        self._read_at = time.monotonic()
        self._next = self._read_at + self.refresh_seconds
        macs: dict[bytes, str] = {}
        try:
            with IPRoute() as ipr:
                for entry in ipr.get_neighbours():
                    mac, dst = entry.get_attr("NDA_LLADDR"), entry.get_attr("NDA_DST")
                    if not mac or not dst or mac == _NO_MAC or not entry["state"] & _USABLE_STATES:
                        continue
                    family = socket.AF_INET6 if ":" in dst else socket.AF_INET
                    macs[socket.inet_pton(family, dst)] = mac.lower()
        except (NetlinkError, OSError) as err:
            log.warning("cannot read the neighbour table: %s; hosts are known by IP", err)
            return
        self._macs = macs

    def tick(self) -> None:
        if time.monotonic() >= self._next:
            self.refresh()

    def mac_of(self, addr: bytes) -> str | None:
        mac = self._macs.get(addr)
        if mac is None and time.monotonic() - self._read_at >= self.miss_seconds:
            self.refresh()
            mac = self._macs.get(addr)
        return mac

    def __len__(self) -> int:
        return len(self._macs)

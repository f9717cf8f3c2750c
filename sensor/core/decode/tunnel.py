"""Tunnels: where the packet a tunnel carries starts, so the sensor sees what a mirror
session or an overlay network delivers wrapped.

`carried(buf, proto, dport, off, end, ports)` takes the carrier's IP protocol (and
UDP destination port) and its payload's bounds, and returns what a link decoder
returns for the inner packet — `(ip_version, l3_offset, vlans)` — or `(0, reason, ())`:

- IP in IP: IPv4 (protocol 4) or IPv6 (41) straight after the outer header;
- GRE (47, RFC 2784 and 2890: checksum, key and sequence fields; version 0) carrying
  IPv4, IPv6, Ethernet (0x6558, transparent bridging), MPLS, or a mirror session:
  ERSPAN type I (0x88BE without a GRE sequence number: the mirrored frame at once),
  type II (0x88BE with one: an 8-byte header) and type III (0x22EB: 12 bytes, and the
  8-byte platform subheader when its O bit is set);
- VXLAN (UDP to `ports.vxlan`, 4789 by default; RFC 7348) and Geneve (`ports.geneve`,
  6081; RFC 8926, options skipped) carrying Ethernet, or IP for Geneve.

Ethernet inside a tunnel goes through `link.ethernet`, so its VLAN tags, MPLS label
stacks and PPPoE sessions are read as on the wire. The caller bounds the nesting (see
`MAX_DEPTH`). Nothing here allocates beyond the returned tuple.
"""

from __future__ import annotations

from typing import NamedTuple

from sensor.core.decode.ip import (
    PROTO_GRE,
    PROTO_IPIP,
    PROTO_IPV6,
    PROTO_TCP,
    PROTO_UDP,
    Decoded,
    decode_ip,
)
from sensor.core.decode.link import ETH_IPV4, ETH_IPV6, ETH_MPLS, LinkResult, ethernet, mpls
from sensor.core.events import Tunnel

MAX_DEPTH = 4                  # tunnels inside tunnels, before `tunnel.too_deep`

GRE_TEB, GRE_ERSPAN_2, GRE_ERSPAN_3 = 0x6558, 0x88BE, 0x22EB
_GRE_CSUM, _GRE_ROUTING, _GRE_KEY, _GRE_SEQ, _GRE_VERSION = 0x8000, 0x4000, 0x2000, 0x1000, 7


class TunnelPorts(NamedTuple):
    """The UDP destination ports read as tunnels (`sensor.tunnels` in sensor.yaml)."""

    vxlan: int = 4789
    geneve: int = 6081


def decapsulate(buf: bytes, carrier: Decoded, ports: TunnelPorts
                ) -> tuple[Decoded, Tunnel] | str:
    """The innermost TCP or UDP packet inside a carrier packet (what `decode_ip` gave
    for IP in IP, GRE, or UDP to a tunnel port), with the outermost packet as its
    `Tunnel`; or the reason it cannot be had (`tunnel.too_deep` past `MAX_DEPTH`)."""
    proto, src, dst, sport, dport, _, _, poff, pend, _, _ = carrier
    root = (src, dst, sport, dport) if proto == PROTO_UDP else (src, dst, 0, 0)
    for depth in range(1, MAX_DEPTH + 1):
        version, l3, _ = carried(buf, proto, dport, poff, pend, ports)
        if isinstance(l3, str):
            return l3
        inner = decode_ip(buf, l3, pend, version)
        if isinstance(inner, str):
            return inner
        proto, dport, poff, pend = inner[0], inner[4], inner[7], inner[8]
        if proto == PROTO_TCP or (proto == PROTO_UDP and dport != ports.vxlan
                                  and dport != ports.geneve):
            return inner, Tunnel(*root, carrier[0], depth)
    return "tunnel.too_deep"


def carried(buf: bytes, proto: int, dport: int, off: int, end: int,
            ports: TunnelPorts) -> LinkResult:
    """The inner packet of a carrier whose payload is `buf[off:end]`."""
    if proto == PROTO_IPIP:
        return _ip(4, off, end)
    if proto == PROTO_IPV6:
        return _ip(6, off, end)
    if proto == PROTO_GRE:
        return gre(buf, off, end)
    if dport == ports.vxlan:
        return vxlan(buf, off, end)
    if dport == ports.geneve:
        return geneve(buf, off, end)
    return 0, "tunnel.other", ()


def _ip(version: int, off: int, end: int) -> LinkResult:
    """An IP packet of `version` starting at `off`, if anything is there."""
    return (version, off, ()) if off < end else (0, "tunnel.truncated", ())


def _by_protocol(buf: bytes, off: int, end: int, protocol: int) -> LinkResult:
    """What an EtherType-numbered payload (GRE's and Geneve's protocol field) holds."""
    if protocol == ETH_IPV4:
        return _ip(4, off, end)
    if protocol == ETH_IPV6:
        return _ip(6, off, end)
    if protocol == GRE_TEB:
        return ethernet(buf, off, end)
    if protocol == ETH_MPLS:
        return mpls(buf, off, end)
    return 0, "tunnel.other", ()


def gre(buf: bytes, off: int, end: int) -> LinkResult:
    if off + 4 > end:
        return 0, "gre.truncated", ()
    flags = (buf[off] << 8) | buf[off + 1]
    protocol = (buf[off + 2] << 8) | buf[off + 3]
    if flags & _GRE_VERSION:
        return 0, "gre.version", ()          # 1 is PPTP's enhanced GRE, not a tunnel of ours
    if flags & _GRE_ROUTING:
        return 0, "gre.routing", ()          # RFC 1701 source routing: obsolete
    header = 4 + 4 * (bool(flags & _GRE_CSUM) + bool(flags & _GRE_KEY)
                      + bool(flags & _GRE_SEQ))
    off += header
    if off > end:
        return 0, "gre.truncated", ()
    if protocol == GRE_ERSPAN_2:
        if flags & _GRE_SEQ:                 # type II: an 8-byte ERSPAN header
            if off + 8 > end:
                return 0, "erspan.truncated", ()
            if buf[off] >> 4 != 1:
                return 0, "erspan.bad_version", ()
            off += 8
        return ethernet(buf, off, end)       # type I: the frame at once
    if protocol == GRE_ERSPAN_3:
        return erspan3(buf, off, end)
    return _by_protocol(buf, off, end, protocol)


def erspan3(buf: bytes, off: int, end: int) -> LinkResult:
    if off + 12 > end:
        return 0, "erspan.truncated", ()
    if buf[off] >> 4 != 2:
        return 0, "erspan.bad_version", ()
    word = buf[off + 10] << 8 | buf[off + 11]     # after SGT(16): P, FT(5), HW ID(6), D, Gra(2), O
    frame_type = (word >> 10) & 0x1F
    subheader = word & 1
    off += 12 + 8 * subheader
    if frame_type == 0:
        return ethernet(buf, off, end)
    if frame_type == 2 and off < end:            # an IP packet, no Ethernet header
        version = buf[off] >> 4
        if version == 4 or version == 6:
            return version, off, ()
    return 0, "erspan.frame_type", ()


def vxlan(buf: bytes, off: int, end: int) -> LinkResult:
    if off + 8 > end:
        return 0, "vxlan.truncated", ()
    if not buf[off] & 0x08:
        return 0, "vxlan.no_vni", ()             # the I flag: set on every VXLAN frame
    return ethernet(buf, off + 8, end)


def geneve(buf: bytes, off: int, end: int) -> LinkResult:
    if off + 8 > end:
        return 0, "geneve.truncated", ()
    if buf[off] >> 6:
        return 0, "geneve.version", ()
    header = 8 + ((buf[off] & 0x3F) << 2)
    protocol = (buf[off + 2] << 8) | buf[off + 3]
    if off + header > end:
        return 0, "geneve.truncated", ()
    return _by_protocol(buf, off + header, end, protocol)

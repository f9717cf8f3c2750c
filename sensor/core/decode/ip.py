"""IPv4/IPv6 and the transport header: addresses, ports and payload bounds.

`decode_ip` returns one flat tuple per packet (no object per layer, because
this runs for every packet) or a reason string:

    (proto, src, dst, sport, dport, tcp_flags, tcp_seq, payload_off,
     payload_end, ip_len, first_fragment)

`payload_end` never exceeds the captured bytes; `ip_len` is the length the IP
header declares (what the flow table counts, like conntrack does), so a
snaplen-truncated capture still counts the bytes that were on the wire.
Tunnel carriers (IP in IP, IPv6 in IP, GRE) come back with ports 0 and their
payload's bounds, for `tunnel.py`. Non-first fragments, ICMP and other protocols
come back as reasons (`ip.fragment`, `icmp`, `ip.other`), counted but not malformed.
"""

from __future__ import annotations

import struct

PROTO_ICMP = 1
PROTO_IPIP = 4
PROTO_TCP = 6
PROTO_UDP = 17
PROTO_IPV6 = 41
PROTO_GRE = 47
PROTO_ICMPV6 = 58

_V4 = struct.Struct("!BxHxxHxB2x4s4s")    # ver/ihl, total length, flags/frag, proto, src, dst
_V6 = struct.Struct("!4xHBx16s16s")       # payload length, next header, src, dst
_TCP = struct.Struct("!HHI4xBB")          # sport, dport, seq, (ack), data offset, flags
_UDP = struct.Struct("!HHH")              # sport, dport, length
_EXT = struct.Struct("!BB")

# IPv6 extension headers we walk past (RFC 8200 §4; AH is RFC 4302, mobility RFC 6275).
_HOP_BY_HOP, _ROUTING, _FRAGMENT, _AH, _DEST_OPTS, _MOBILITY = 0, 43, 44, 51, 60, 135
_EXT_HEADERS = frozenset((_HOP_BY_HOP, _ROUTING, _FRAGMENT, _AH, _DEST_OPTS, _MOBILITY))
_MAX_EXT_HEADERS = 8

NOT_MALFORMED = frozenset(("ip.fragment", "icmp", "ip.other", "link.not_ip", "tunnel.other",
                           "gre.version", "mpls.control_channel", "tls.partial",
                           "tls.not_client_hello"))

Decoded = tuple[int, bytes, bytes, int, int, int, int, int, int, int, bool]


def decode_ip(buf: bytes, off: int, end: int, version: int) -> Decoded | str:
    if version == 4:
        if off + 20 > end:
            return "ip.truncated"
        vihl, total, frag, proto, src, dst = _V4.unpack_from(buf, off)
        if vihl >> 4 != 4:
            return "ip.bad_version"
        hlen = (vihl & 0x0F) << 2
        if hlen < 20:
            return "ip.bad_header_length"
        if total == 0:                      # TSO / BIG TCP: length lives outside the header
            total = end - off
        elif total < hlen:
            return "ip.bad_total_length"
        if off + hlen > end:
            return "ip.truncated"
        if frag & 0x1FFF:
            return "ip.fragment"
        first_fragment = bool(frag & 0x2000)
        l4 = off + hlen
        stop = off + total
    elif version == 6:
        if off + 40 > end:
            return "ipv6.truncated"
        if buf[off] >> 4 != 6:
            return "ip.bad_version"
        plen, proto, src, dst = _V6.unpack_from(buf, off)
        total = 40 + plen
        if plen == 0:                       # jumbogram or TSO
            total = end - off
        stop = off + total
        l4 = off + 40
        first_fragment = False
        for _ in range(_MAX_EXT_HEADERS):
            if proto not in _EXT_HEADERS:
                break
            if l4 + 8 > end:
                return "ipv6.truncated"
            nxt, hdr_len = _EXT.unpack_from(buf, l4)
            if proto == _FRAGMENT:
                if ((buf[l4 + 2] << 8) | buf[l4 + 3]) & 0xFFF8:
                    return "ip.fragment"
                first_fragment = bool(buf[l4 + 3] & 1)
                l4 += 8
            elif proto == _AH:
                l4 += (hdr_len + 2) << 2
            else:
                l4 += (hdr_len + 1) << 3
            proto = nxt
        else:
            return "ipv6.too_many_extension_headers"
    else:
        return "ip.bad_version"

    if stop > end:
        stop = end                          # snaplen cut the packet: parse what we have
    if proto == PROTO_TCP:
        if l4 + 20 > stop:
            return "tcp.truncated"
        sport, dport, seq, doff, flags = _TCP.unpack_from(buf, l4)
        poff = l4 + ((doff >> 4) << 2)
        if poff < l4 + 20:
            return "tcp.bad_offset"
        if poff > stop:
            poff = stop
        return proto, src, dst, sport, dport, flags, seq, poff, stop, total, first_fragment
    if proto == PROTO_UDP:
        if l4 + 8 > stop:
            return "udp.truncated"
        sport, dport, ulen = _UDP.unpack_from(buf, l4)
        if ulen < 8 and not (ulen == 0 and version == 6):   # 0 = jumbogram (RFC 2675)
            return "udp.bad_length"
        if ulen and l4 + ulen < stop:
            stop = l4 + ulen
        return proto, src, dst, sport, dport, 0, 0, l4 + 8, stop, total, first_fragment
    if proto in (PROTO_GRE, PROTO_IPIP, PROTO_IPV6):
        return proto, src, dst, 0, 0, 0, 0, l4, stop, total, first_fragment
    if proto in (PROTO_ICMP, PROTO_ICMPV6):
        return "icmp"
    return "ip.other"

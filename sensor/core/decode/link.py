"""Link layers: find where the IP header starts, keeping VLAN ids.

`link_decoder(linktype)` picks one small function per capture link type
(values as libpcap's `pcap_datalink()` reports them); each returns
`(ip_version, l3_offset, vlans)`, or `(0, reason, ())` when the frame carries
no IP or is cut short. Between the link header and IP, 802.1Q/QinQ tags, MPLS
label stacks (RFC 3032; the payload told by its first nibble, as tshark does, and
an Ethernet pseudowire with its control word, RFC 4448) and PPPoE sessions (RFC
2516, PPP protocols 0x0021 and 0x0057) are walked.
"""

from __future__ import annotations

from collections.abc import Callable

ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
ETH_MPLS, ETH_MPLS_MULTICAST = 0x8847, 0x8848
ETH_PPPOE_SESSION = 0x8864
VLAN_TYPES = frozenset((0x8100, 0x88A8, 0x9100))
MAX_VLAN_TAGS = 4
MAX_MPLS_LABELS = 16
MAX_PSEUDOWIRES = 4           # Ethernet in MPLS in Ethernet …: nesting bound
_KNOWN_ETHERTYPES = frozenset((ETH_IPV4, ETH_IPV6, ETH_MPLS, ETH_MPLS_MULTICAST,
                               ETH_PPPOE_SESSION, *VLAN_TYPES))

# DLT values (what libpcap hands back for a file's link type).
DLT_NULL = 0
DLT_EN10MB = 1
DLT_PPP = 9
DLT_RAW = 12          # LINKTYPE_RAW (101) is reported as DLT_RAW on Linux
DLT_RAW_BSD = 14
DLT_PPP_SERIAL = 50
DLT_LINKTYPE_RAW = 101
DLT_LOOP = 108
DLT_LINUX_SLL = 113
DLT_IPV4 = 228
DLT_IPV6 = 229
DLT_LINUX_SLL2 = 276

# BSD loopback address families: AF_INET is 2 everywhere; AF_INET6 differs per OS.
_AF_INET6 = frozenset((10, 24, 28, 30))

LinkResult = tuple[int, "int | str", tuple[int, ...]]
LinkDecoder = Callable[[bytes, int, int], LinkResult]

_NOT_IP = (0, "link.not_ip", ())
_TRUNCATED = (0, "link.truncated", ())


def _by_ethertype(buf: bytes, off: int, end: int, ethertype: int,
                  pseudowires: int = 0) -> LinkResult:
    """Walk VLAN tags (802.1Q, QinQ) from `off`, where a tag or IP starts."""
    vlans: tuple[int, ...] = ()
    while ethertype in VLAN_TYPES:
        if off + 4 > end or len(vlans) == MAX_VLAN_TAGS:
            return _TRUNCATED
        vlans += (((buf[off] << 8) | buf[off + 1]) & 0x0FFF,)
        ethertype = (buf[off + 2] << 8) | buf[off + 3]
        off += 4
    if ethertype == ETH_IPV4:
        return 4, off, vlans
    if ethertype == ETH_IPV6:
        return 6, off, vlans
    if ethertype in (ETH_MPLS, ETH_MPLS_MULTICAST):
        version, l3, inner = mpls(buf, off, end, pseudowires)
        return version, l3, vlans + inner
    if ethertype == ETH_PPPOE_SESSION:
        version, l3, _ = pppoe_session(buf, off, end)
        return version, l3, vlans
    return _NOT_IP


def ethernet(buf: bytes, off: int, end: int, pseudowires: int = 0) -> LinkResult:
    if off + 14 > end:
        return _TRUNCATED
    ethertype = (buf[off + 12] << 8) | buf[off + 13]
    if ethertype == ETH_IPV4:           # the common case, without the tag walk
        return 4, off + 14, ()
    return _by_ethertype(buf, off + 14, end, ethertype, pseudowires)


def _known_ethertype(buf: bytes, at: int, end: int) -> bool:
    if at + 2 > end:
        return False
    ethertype = (buf[at] << 8) | buf[at + 1]
    return ethertype in _KNOWN_ETHERTYPES


def mpls(buf: bytes, off: int, end: int, pseudowires: int = 0) -> LinkResult:
    """An MPLS label stack from `off`, then its payload by the first nibble: 4 IPv4,
    6 IPv6, 1 an associated channel (OAM, not IP), else an Ethernet pseudowire. A
    pseudowire whose first nibble is 0 may start with RFC 4448's control word: it is
    taken to when the frame read without one names no EtherType we know and the frame
    after four bytes does (tshark guesses the same from its OUI list)."""
    for _ in range(MAX_MPLS_LABELS):
        if off + 4 > end:
            return 0, "mpls.truncated", ()
        bottom = buf[off + 2] & 1
        off += 4
        if bottom:
            break
    else:
        return 0, "mpls.too_many_labels", ()
    if off >= end:
        return 0, "mpls.truncated", ()
    nibble = buf[off] >> 4
    if nibble == 4 or nibble == 6:
        return nibble, off, ()
    if nibble == 1:
        return 0, "mpls.control_channel", ()
    if pseudowires == MAX_PSEUDOWIRES:
        return 0, "tunnel.too_deep", ()
    if nibble == 0 and not _known_ethertype(buf, off + 12, end) \
            and _known_ethertype(buf, off + 16, end):
        off += 4                                   # the control word
    return ethernet(buf, off, end, pseudowires + 1)


def pppoe_session(buf: bytes, off: int, end: int) -> LinkResult:
    """A PPPoE session frame from `off`: version/type 0x11, code 0, session, length,
    then the PPP protocol."""
    if off + 8 > end:
        return _TRUNCATED
    if buf[off] != 0x11 or buf[off + 1] != 0:
        return 0, "pppoe.bad_header", ()
    protocol = (buf[off + 6] << 8) | buf[off + 7]
    if protocol == 0x0021:
        return 4, off + 8, ()
    if protocol == 0x0057:
        return 6, off + 8, ()
    return _NOT_IP


def linux_sll(buf: bytes, off: int, end: int) -> LinkResult:
    if off + 16 > end:
        return _TRUNCATED
    return _by_ethertype(buf, off + 16, end, (buf[off + 14] << 8) | buf[off + 15])


def linux_sll2(buf: bytes, off: int, end: int) -> LinkResult:
    if off + 20 > end:
        return _TRUNCATED
    return _by_ethertype(buf, off + 20, end, (buf[off] << 8) | buf[off + 1])


def raw_ip(buf: bytes, off: int, end: int) -> LinkResult:
    if off >= end:
        return _TRUNCATED
    version = buf[off] >> 4
    if version == 4 or version == 6:
        return version, off, ()
    return _NOT_IP


def raw_ipv4(buf: bytes, off: int, end: int) -> LinkResult:
    return (4, off, ()) if off < end else _TRUNCATED


def raw_ipv6(buf: bytes, off: int, end: int) -> LinkResult:
    return (6, off, ()) if off < end else _TRUNCATED


def _loopback(family: int, off: int) -> LinkResult:
    if family == 2:
        return 4, off + 4, ()
    if family in _AF_INET6:
        return 6, off + 4, ()
    return _NOT_IP


def bsd_null(buf: bytes, off: int, end: int) -> LinkResult:
    """DLT_NULL: a 4-byte address family in the *capturing* host's byte order."""
    if off + 4 > end:
        return _TRUNCATED
    family = int.from_bytes(buf[off:off + 4], "little")
    if family > 0xFFFF:
        family = int.from_bytes(buf[off:off + 4], "big")
    return _loopback(family, off)


def bsd_loop(buf: bytes, off: int, end: int) -> LinkResult:
    """DLT_LOOP (OpenBSD): the address family in network byte order."""
    if off + 4 > end:
        return _TRUNCATED
    return _loopback(int.from_bytes(buf[off:off + 4], "big"), off)


def ppp(buf: bytes, off: int, end: int) -> LinkResult:
    """PPP, with or without the 0xFF 0x03 address/control bytes (RFC 1662)."""
    if off + 2 > end:
        return _TRUNCATED
    if buf[off] == 0xFF and buf[off + 1] == 0x03:
        off += 2
        if off + 2 > end:
            return _TRUNCATED
    protocol = (buf[off] << 8) | buf[off + 1]
    if protocol == 0x0021:
        return 4, off + 2, ()
    if protocol == 0x0057:
        return 6, off + 2, ()
    return _NOT_IP


LINK_DECODERS: dict[int, LinkDecoder] = {
    DLT_EN10MB: ethernet,
    DLT_LINUX_SLL: linux_sll,
    DLT_LINUX_SLL2: linux_sll2,
    DLT_RAW: raw_ip,
    DLT_RAW_BSD: raw_ip,
    DLT_LINKTYPE_RAW: raw_ip,
    DLT_IPV4: raw_ipv4,
    DLT_IPV6: raw_ipv6,
    DLT_NULL: bsd_null,
    DLT_LOOP: bsd_loop,
    DLT_PPP: ppp,
    DLT_PPP_SERIAL: ppp,
}


def link_decoder(linktype: int) -> LinkDecoder | None:
    """The decoder for a capture's link type, or None when we do not speak it."""
    return LINK_DECODERS.get(linktype)

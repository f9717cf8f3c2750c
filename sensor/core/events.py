"""The vocabulary shared by the core and the edges: plain, immutable values.

These are `NamedTuple`s rather than frozen dataclasses: the same named fields,
value equality and immutability, but built about five times faster, which
matters because the decoder makes several per DNS packet (a frozen dataclass
sets each field through `object.__setattr__`).

Addresses travel as packed bytes (4 or 16) inside the core, because that is
what the decoder slices out of a packet and what hashes fastest; they become
text only at the edges (EVE, summaries).
"""

from __future__ import annotations

from functools import lru_cache
from ipaddress import ip_address
from socket import AF_INET, AF_INET6, inet_ntop
from typing import NamedTuple


def packed_text(addr: bytes) -> str:
    """Packed IPv4/IPv6 address → the text `ipaddress` gives it, by the C library's
    `inet_ntop` (a tenth of the cost); the two differ only where the C library writes an
    IPv6 address with a dotted IPv4 tail (`::ffff:192.0.2.1`), and there `ipaddress`
    answers."""
    if len(addr) == 4:
        return inet_ntop(AF_INET, addr)
    text = inet_ntop(AF_INET6, addr)
    return str(ip_address(addr)) if "." in text else text


addr_text = lru_cache(maxsize=65536)(packed_text)
addr_text.__doc__ = "`packed_text`, memoised: hosts recur."


QR_RESPONSE = 0x8000     # the header's QR bit: a response, not a query
RCODE_MASK = 0x000F      # the header's response code

# The packet path builds these records with `new_record(Class, (field, ...))`: that is
# tuple.__new__, giving the same object as `Class(field, ...)` without the Python-level
# __new__ every NamedTuple class runs (half the cost; every field must be given).
new_record = tuple.__new__


class DnsQuestion(NamedTuple):
    name: str
    rrtype: int


class DnsAnswer(NamedTuple):
    name: str
    rrtype: int
    ttl: int
    data: str            # text form: an address, a name, or TXT strings joined by spaces
    addr: bytes = b""    # packed address for A/AAAA, else empty


class DnsMessage(NamedTuple):
    """One decoded DNS message (UDP datagram or TCP length-prefixed record)."""

    id: int
    flags: int
    questions: tuple[DnsQuestion, ...]
    answers: tuple[DnsAnswer, ...]
    truncated_sections: bool = False   # answers stopped early on a malformed record

    @property
    def is_response(self) -> bool:
        return bool(self.flags & QR_RESPONSE)

    @property
    def rcode(self) -> int:
        return self.flags & RCODE_MASK

    @property
    def opcode(self) -> int:
        return (self.flags >> 11) & 0x0F


class Endpoints(NamedTuple):
    """Who talked to whom, for one packet or message (packed addresses)."""

    proto: int          # 6 TCP, 17 UDP
    src: bytes
    sport: int
    dst: bytes
    dport: int


class Tunnel(NamedTuple):
    """The outermost packet of a tunnelled one, as Suricata's EVE `tunnel` object has
    it: the carrier's addresses (and ports, for VXLAN and Geneve), its IP protocol
    (4, 41, 47 or 17) and how many tunnels deep the packet was."""

    src: bytes
    dst: bytes
    sport: int
    dport: int
    proto: int
    depth: int


class DnsEvent(NamedTuple):
    ts: float
    flow_id: int
    endpoints: Endpoints
    message: DnsMessage
    mdns: bool = False
    vlan: tuple[int, ...] = ()
    tunnel: Tunnel | None = None


class ClientHello(NamedTuple):
    """What a TLS ClientHello says of the connection it opens (`decode/tls.py`)."""

    sni: str                    # the server name, "" when none is sent
    version: int                # the highest offered: 0x0304 for TLS 1.3
    alpn: tuple[str, ...]
    ja3: str                    # the JA3 string; ja3_hash is its MD5
    ja3_hash: str
    ja4: str                    # FoxIO's JA4: "t13d1516h2_8daaf6152771_e5627efa2ab1"


class TlsEvent(NamedTuple):
    ts: float
    flow_id: int
    endpoints: Endpoints        # the client first
    hello: ClientHello
    vlan: tuple[int, ...] = ()
    tunnel: Tunnel | None = None


class QuicEvent(NamedTuple):
    """A ClientHello read from a QUIC connection's Initial packets (`decode/quic.py`)."""

    ts: float
    flow_id: int
    endpoints: Endpoints        # the client first
    hello: ClientHello
    version: int                # 1 (RFC 9000) or 0x6b3343cf (version 2, RFC 9369)
    vlan: tuple[int, ...] = ()
    tunnel: Tunnel | None = None


class HttpRequest(NamedTuple):
    """One HTTP/1.x request head (`decode/http1.py`); names escaped as DNS names are."""

    method: str
    host: str                   # the Host header's (or absolute target's) name, no port
    port: int                   # the port the Host header or target names, else 0
    target: str                 # the request target as sent: "/a?b", or "host:443"
    user_agent: str
    protocol: str               # "HTTP/1.1"
    url: str                    # the full URL, normalised as URL indicators are; "" for
                                # CONNECT, which names a host and port only


class HttpEvent(NamedTuple):
    ts: float
    flow_id: int
    endpoints: Endpoints        # the client first
    request: HttpRequest
    vlan: tuple[int, ...] = ()
    tunnel: Tunnel | None = None


class EncryptedDns(NamedTuple):
    """An internal host resolving names where the sensor cannot read them: DNS over TLS
    (TCP 853), over QUIC (UDP 853), or over HTTPS to a listed public resolver, known by
    its server name or address. Not a campaign hit."""

    ts: float
    flow_id: int
    endpoints: Endpoints        # the client first
    host: bytes                 # the internal client
    kind: str                   # dot | doq | doh
    server: str                 # the resolver's name (SNI) or address


class FlowEnd(NamedTuple):
    """A finished bidirectional flow; `src` is the initiator."""

    flow_id: int
    endpoints: Endpoints
    first_ts: float
    last_ts: float
    pkts_toserver: int
    bytes_toserver: int
    pkts_toclient: int
    bytes_toclient: int
    tcp_flags: int      # OR of the flags seen in both directions
    state: str          # new | established | closed
    reason: str         # fin | rst | idle_timeout | active_timeout | table_full | conntrack
                        # (gateway mode: the kernel ended it) | end_of_input
    alerted: bool
    vlan: tuple[int, ...] = ()
    tunnel: Tunnel | None = None


class Indicator(NamedTuple):
    """One blocklist entry after merging every source that lists it."""

    value: str                  # "evil.example", "=exact.example", "203.0.113.7", "198.51.100.0/24"
    kind: str                   # domain | ip | cidr | url | ja3 | ja4
    sources: tuple[str, ...]
    campaign: str
    severity: int               # 1 high … 3 low
    comment: str = ""
    first_listed: str = ""


class Hit(NamedTuple):
    """A blocklist match, with where it was seen (Zeek's `seen.where`)."""

    ts: float
    flow_id: int
    endpoints: Endpoints
    indicator: Indicator
    match: str                  # dns.query | dns.answer | dns.cname | tls.sni |
                                # quic.sni | http.host | http.url | tls.ja3 | tls.ja4 |
                                # flow.dest_ip | flow.src_ip
    host: bytes                 # the internal side
    outbound: bool              # True: our host contacted the indicator
    seen: str                   # the name or address that matched
    resolved_from: str = ""     # the listed name whose answer gave this address
    dns: DnsMessage | None = None
    vlan: tuple[int, ...] = ()
    tunnel: Tunnel | None = None
    tls: ClientHello | None = None      # tls.* and quic.sni hits: the hello
    http: HttpRequest | None = None     # http.* hits: the request

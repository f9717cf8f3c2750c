"""The vocabulary shared by the core and the edges: plain, frozen values.

Addresses travel as packed bytes (4 or 16) inside the core, because that is
what the decoder slices out of a packet and what hashes fastest; they become
text only at the edges (EVE, summaries).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import ip_address


def addr_text(addr: bytes) -> str:
    """Packed IPv4/IPv6 address → its usual text form."""
    return str(ip_address(addr))


@dataclass(frozen=True, slots=True)
class DnsQuestion:
    name: str
    rrtype: int


@dataclass(frozen=True, slots=True)
class DnsAnswer:
    name: str
    rrtype: int
    ttl: int
    data: str            # text form: an address, a name, or quoted TXT strings
    addr: bytes = b""    # packed address for A/AAAA, else empty


@dataclass(frozen=True, slots=True)
class DnsMessage:
    """One decoded DNS message (UDP datagram or TCP length-prefixed record)."""

    id: int
    flags: int
    questions: tuple[DnsQuestion, ...]
    answers: tuple[DnsAnswer, ...]
    truncated_sections: bool = False   # answers stopped early on a malformed record

    @property
    def is_response(self) -> bool:
        return bool(self.flags & 0x8000)

    @property
    def rcode(self) -> int:
        return self.flags & 0x000F

    @property
    def opcode(self) -> int:
        return (self.flags >> 11) & 0x0F


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Who talked to whom, for one packet or message (packed addresses)."""

    proto: int          # 6 TCP, 17 UDP
    src: bytes
    sport: int
    dst: bytes
    dport: int


@dataclass(frozen=True, slots=True)
class DnsEvent:
    ts: float
    flow_id: int
    endpoints: Endpoints
    message: DnsMessage
    mdns: bool = False
    vlan: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class FlowEnd:
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
    reason: str         # fin | rst | idle_timeout | active_timeout | table_full | end_of_input
    alerted: bool
    vlan: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Indicator:
    """One blocklist entry after merging every source that lists it."""

    value: str                  # "evil.example", "=exact.example", "203.0.113.7", "198.51.100.0/24"
    kind: str                   # domain | ip | cidr
    sources: tuple[str, ...]
    campaign: str
    severity: int               # 1 high … 3 low


@dataclass(frozen=True, slots=True)
class Hit:
    """A blocklist match, with where it was seen (Zeek's `seen.where`)."""

    ts: float
    flow_id: int
    endpoints: Endpoints
    indicator: Indicator
    match: str                  # dns.query | dns.answer | dns.cname | flow.dest_ip | flow.src_ip
    host: bytes                 # the internal side
    outbound: bool              # True: our host contacted the indicator
    seen: str                   # the name or address that matched
    resolved_from: str = ""     # the listed name whose answer gave this address
    dns: DnsMessage | None = None
    vlan: tuple[int, ...] = field(default=())

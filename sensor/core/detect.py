"""Events + `Blocklist` → `Hit`s, with where each was seen.

Match points: a DNS request's query names (`dns.query`); a response's CNAME
targets (`dns.cname`) and answer addresses (`dns.answer`); a flow's remote
address at its first packet (`flow.dest_ip` when our host started it,
`flow.src_ip` when a listed address started it), so a TCP attempt that never
completes still shows the infected host. Inside connections: the server name of a
TLS or QUIC ClientHello (`tls.sni`, `quic.sni`) and its JA3/JA4 fingerprints
(`tls.ja3`, `tls.ja4`); an HTTP request's Host (`http.host`) and full URL
(`http.url`, against URL indicators). Addresses that a DNS answer gave
for a listed name are remembered (bounded, honouring TTLs) so a flow to one
of them is reported with `resolved_from`, even when the address itself is
not listed.

The host of a hit is the internal side; `outbound` says whether our host
made the contact (the report counts those only). Nothing here reads the
clock or does I/O.
"""

from __future__ import annotations

from collections import OrderedDict

from sensor.blocklist.matcher import Blocklist, PrefixSet
from sensor.core.decode.dns import RRTYPE_A, RRTYPE_AAAA, RRTYPE_CNAME
from sensor.core.events import (
    QR_RESPONSE,
    ClientHello,
    DnsMessage,
    EncryptedDns,
    Endpoints,
    Hit,
    HttpRequest,
    Indicator,
    addr_text,
)

DOT_PORT, DOH_PORT = 853, 443
DEFAULT_INTERNAL_NETWORKS = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10",
                             "fc00::/7", "fe80::/10")
MIN_TTL = 60.0                  # clients keep using an answer briefly, even with TTL 0
MAX_RESOLVED = 200_000
MAX_KNOWN_ADDRESSES = 65_536    # internal-or-not answers remembered per address


class ResolvedNames:
    """Bounded map: address → (listed name, its indicator, expiry), oldest out first.

    An OrderedDict, because dropping the oldest entry of a plain dict means stepping over
    the slots of every entry dropped before it (until the dict is resized): under a flood
    of answers for a listed parent domain that turned each answer into a scan."""

    def __init__(self, capacity: int = MAX_RESOLVED) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[bytes, tuple[str, Indicator, float]] = OrderedDict()

    def remember(self, addr: bytes, name: str, indicator: Indicator, expires: float) -> None:
        entries = self._entries
        entries.pop(addr, None)
        if len(entries) >= self.capacity:
            entries.popitem(last=False)
        entries[addr] = (name, indicator, expires)

    def lookup(self, addr: bytes, now: float) -> tuple[str, Indicator] | None:
        entry = self._entries.get(addr)
        if entry is None:
            return None
        if entry[2] < now:
            del self._entries[addr]
            return None
        return entry[0], entry[1]

    def __len__(self) -> int:
        return len(self._entries)


class Detector:
    def __init__(self, blocklist: Blocklist, internal: PrefixSet[bool]) -> None:
        self.blocklist = blocklist
        self.internal = internal
        self.resolved = ResolvedNames()
        self._internal_seen: dict[bytes, bool] = {}

    def is_internal(self, addr: bytes) -> bool:
        """Whether `addr` is in an internal network; memoised, as the same hosts recur."""
        known = self._internal_seen.get(addr)
        if known is None:
            if len(self._internal_seen) >= MAX_KNOWN_ADDRESSES:
                self._internal_seen.clear()
            known = self._internal_seen[addr] = self.internal.match(addr) is not None
        return known

    def _host(self, client: bytes, server: bytes) -> tuple[bytes, bool]:
        """(internal host, outbound): the client, unless only the server is internal."""
        if not self.is_internal(client) and self.is_internal(server):
            return server, False
        return client, True

    def dns(self, ts: float, flow_id: int, ep: Endpoints, msg: DnsMessage,
            vlan: tuple[int, ...]) -> list[Hit]:
        found = self._dns_matches(ts, msg)
        if not found:
            return []
        if msg.is_response:
            host, outbound = self._host(ep.dst, ep.src)
        else:
            host, outbound = self._host(ep.src, ep.dst)
        return [Hit(ts, flow_id, ep, indicator, match, host, outbound, seen, origin, msg, vlan)
                for indicator, match, seen, origin in found]

    def _dns_matches(self, ts: float, msg: DnsMessage) -> list[tuple[Indicator, str, str, str]]:
        """(indicator, match point, what matched, resolved from) for one message; remembers
        the addresses answered for listed names."""
        blocklist = self.blocklist
        found = []
        if not msg.flags & QR_RESPONSE:                 # (is_response, inlined: every message)
            for question in msg.questions:
                indicator = blocklist.match_domain(question.name)
                if indicator is not None:
                    found.append((indicator, "dns.query", question.name, ""))
            return found
        listed_origin: dict[str, tuple[str, Indicator]] = {}
        for question in msg.questions:
            indicator = blocklist.match_domain(question.name)
            if indicator is not None:
                listed_origin[question.name] = (question.name, indicator)
        for answer in msg.answers:
            origin = listed_origin.get(answer.name)
            if answer.rrtype == RRTYPE_CNAME:
                indicator = blocklist.match_domain(answer.data)
                if indicator is not None:
                    found.append((indicator, "dns.cname", answer.data, ""))
                    origin = origin or (answer.data, indicator)
                if origin is not None:
                    listed_origin[answer.data] = origin
            elif answer.rrtype == RRTYPE_A or answer.rrtype == RRTYPE_AAAA:
                indicator = blocklist.match_address(answer.addr)
                if indicator is not None:
                    found.append((indicator, "dns.answer", answer.data,
                                  origin[0] if origin else ""))
                if origin is not None:
                    self.resolved.remember(answer.addr, origin[0], origin[1],
                                           ts + max(float(answer.ttl), MIN_TTL))
        return found

    def client_hello(self, ts: float, flow_id: int, ep: Endpoints, hello: ClientHello,
                     vlan: tuple[int, ...], point: str = "tls.sni") -> list[Hit]:
        """A listed name in a ClientHello's SNI (`tls.sni`, or `quic.sni`): the client
        connected to it; a listed JA3 or JA4 fingerprint: a listed client program."""
        blocklist = self.blocklist
        found: list[tuple[Indicator, str, str]] = []
        if hello.sni:
            indicator = blocklist.match_domain(hello.sni)
            if indicator is not None:
                found.append((indicator, point, hello.sni))
        if blocklist.fingerprints:
            for fingerprint, match in ((hello.ja3_hash, "tls.ja3"), (hello.ja4, "tls.ja4")):
                indicator = blocklist.match_fingerprint(fingerprint)
                if indicator is not None:
                    found.append((indicator, match, fingerprint))
        return self._connection_hits(ts, flow_id, ep, found, vlan, hello, None)

    def http_request(self, ts: float, flow_id: int, ep: Endpoints, request: HttpRequest,
                     vlan: tuple[int, ...]) -> list[Hit]:
        """A listed name in a request's Host (`http.host`), a listed URL (`http.url`)."""
        blocklist = self.blocklist
        found: list[tuple[Indicator, str, str]] = []
        if request.host:
            indicator = blocklist.match_domain(request.host)
            if indicator is not None:
                found.append((indicator, "http.host", request.host))
        if request.url and blocklist.urls:
            indicator = blocklist.match_url(request.url, request.host)
            if indicator is not None:
                found.append((indicator, "http.url", request.url))
        return self._connection_hits(ts, flow_id, ep, found, vlan, None, request)

    def _connection_hits(self, ts: float, flow_id: int, ep: Endpoints,
                         found: list[tuple[Indicator, str, str]], vlan: tuple[int, ...],
                         hello: ClientHello | None, request: HttpRequest | None) -> list[Hit]:
        """The hits of what a connection's ClientHello or request matched (indicator,
        match point, what matched), each carrying that hello or request."""
        if not found:
            return []
        host, outbound = self._host(ep.src, ep.dst)
        return [Hit(ts, flow_id, ep, indicator, match, host, outbound, seen, vlan=vlan,
                    tls=hello, http=request) for indicator, match, seen in found]

    def encrypted_dns(self, ts: float, flow_id: int, ep: Endpoints,
                      hello: ClientHello | None = None) -> EncryptedDns | None:
        """An internal client's flow to a DNS-over-TLS/QUIC port, or to a listed DoH
        resolver's address (at the flow's start) or name (in its ClientHello)."""
        port = ep.dport
        if port != DOT_PORT and port != DOH_PORT:
            return None
        blocklist = self.blocklist
        if hello is None:
            if port == DOT_PORT:
                kind = "dot" if ep.proto == 6 else "doq"
            elif len(blocklist.resolver_addresses) and \
                    blocklist.resolver_addresses.match(ep.dst) is not None:
                kind = "doh"
            else:
                return None
            server = addr_text(ep.dst)
        elif port == DOH_PORT and hello.sni and len(blocklist.resolvers) and \
                blocklist.resolvers.match(hello.sni) is not None and \
                blocklist.resolver_addresses.match(ep.dst) is None:     # not counted yet
            kind, server = "doh", hello.sni
        else:
            return None
        if not self.is_internal(ep.src) or self.is_internal(ep.dst):
            return None
        return EncryptedDns(ts, flow_id, ep, ep.src, kind, server)

    def flow_start(self, ts: float, flow_id: int, ep: Endpoints,
                   vlan: tuple[int, ...]) -> list[Hit]:
        host, outbound = self._host(ep.src, ep.dst)
        remote = ep.dst if outbound else ep.src
        indicator = self.blocklist.match_address(remote)
        resolved = self.resolved.lookup(remote, ts) if outbound else None
        if indicator is None and resolved is None:
            return []
        match = "flow.dest_ip" if outbound else "flow.src_ip"
        seen = addr_text(remote)
        if indicator is None:
            assert resolved is not None
            name, indicator = resolved
            return [Hit(ts, flow_id, ep, indicator, match, host, outbound, seen, name, vlan=vlan)]
        return [Hit(ts, flow_id, ep, indicator, match, host, outbound, seen,
                    resolved[0] if resolved else "", vlan=vlan)]


def internal_networks(
        cidrs: tuple[str, ...] | list[str] = DEFAULT_INTERNAL_NETWORKS) -> PrefixSet[bool]:
    return PrefixSet.of(list(cidrs), True)

"""The one place the core is assembled: frames → decode → flows → detect → tally.

`Pipeline.feed_batch` takes a batch of frames as libpcap-style packed records
(sec, usec, offset, caplen) over one buffer, because that is how frames leave
a capture source in bulk; `feed` wraps a single frame. Everything the batch
produced is appended to `events` (DnsEvent, Hit, FlowEnd, in order) for the
caller to drain. The per-packet path touches only link, IP and port bytes;
DNS is parsed only for DNS ports, and detection runs once per new flow.
Tunnelled packets (IP in IP, GRE and ERSPAN, VXLAN, Geneve) are followed to the
innermost TCP or UDP packet, which is what flows, hits and hosts are about; the
flow remembers the outermost packet as its `Tunnel`. In gateway mode
`feed_conntrack` takes the kernel's connection events in place of the packets of
non-DNS flows (see `conntrack_flows.py`).
"""

from __future__ import annotations

import struct
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from sensor.blocklist.matcher import Blocklist, PrefixSet
from sensor.core.app_layer import FINISHED, AppLayer
from sensor.core.conntrack_flows import ConntrackEvent, ConntrackFlows
from sensor.core.decode.dns import decode_dns
from sensor.core.decode.ip import NOT_MALFORMED, PROTO_TCP, PROTO_UDP, decode_ip
from sensor.core.decode.link import LinkDecoder, ethernet
from sensor.core.decode.tcpdns import TcpDnsStream
from sensor.core.decode.tunnel import TunnelPorts, decapsulate
from sensor.core.detect import DOH_PORT, DOT_PORT, Detector, internal_networks
from sensor.core.events import (
    QR_RESPONSE,
    ClientHello,
    DnsEvent,
    EncryptedDns,
    Endpoints,
    FlowEnd,
    Hit,
    HttpEvent,
    HttpRequest,
    QuicEvent,
    TlsEvent,
    Tunnel,
    new_record,
)
from sensor.core.flows import Flow, FlowTable, FlowTimeouts, flow_key
from sensor.core.tally import HostTally

FRAME_RECORD = struct.Struct("=IIII")       # sec, usec, offset, caplen (pcapy-ng next_batch)
# Ethernet type, IPv4 version/IHL, total length, flags/fragment, protocol, addresses,
# ports, and the next 4 bytes (TCP sequence number; UDP length and checksum).
_ETH_IPV4 = struct.Struct("!12xHBxH2xHxB2x4s4sHHI")
DNS_PORT, MDNS_PORT = 53, 5353
DNS_PORTS = frozenset((DNS_PORT, MDNS_PORT))

Event = DnsEvent | Hit | FlowEnd | TlsEvent | QuicEvent | HttpEvent | EncryptedDns
# A client's data waiting to be read: (ts, flow, proto, payload start, end, TCP seq, VLANs)
ClientData = tuple[float, Flow, int, int, int, int, tuple[int, ...]]
EVENT_CHUNK = 512


def event_chunks(events: list[Event]) -> Iterator[list[Event]]:
    """The events a few hundred at a time, for sinks to take in turn chunk by chunk
    (count, EVE, uplink): each sink then reads events the one before it has just
    read, still in the CPU's caches. The end of a capture hands over every open flow
    at once; sink by sink over all of them, each would fetch them from memory again."""
    if len(events) <= EVENT_CHUNK:
        yield events
        return
    for start in range(0, len(events), EVENT_CHUNK):
        yield events[start:start + EVENT_CHUNK]


@dataclass
class PipelineStats:
    packets: int = 0
    bytes: int = 0
    dns_requests: int = 0
    dns_responses: int = 0
    conntrack_events: int = 0
    tls_hellos: int = 0
    quic_hellos: int = 0
    http_requests: int = 0
    encrypted_dns: int = 0      # flows of internal hosts to DoT, DoQ or DoH resolvers


class Pipeline:
    def __init__(self, blocklist: Blocklist | None = None,
                 internal: PrefixSet[bool] | None = None,
                 timeouts: FlowTimeouts | None = None,
                 tunnel_ports: TunnelPorts | None = None, app: bool = True,
                 gateway: bool = False) -> None:
        self.events: list[Event] = []
        self.app_layer = AppLayer() if app else None
        self.tunnel_ports = tunnel_ports or TunnelPorts()
        self.flows = FlowTable(timeouts or FlowTimeouts(), ended=self.events)
        # Gateway mode: conntrack gives the flows (`feed_conntrack`); captured packets
        # other than DNS are only read for names, in flows of their own that are neither
        # matched at their start nor reported when they end; what is read from one takes
        # the id of the kernel's connection between the same endpoints, when it is open.
        self.gateway = gateway
        self._unreported: list[FlowEnd] = []
        self.name_flows = FlowTable(timeouts or FlowTimeouts(), first_flow_id=1 << 62,
                                    ended=self._unreported)
        self.detector = Detector(blocklist or Blocklist.empty(), internal or internal_networks())
        self.conntrack = ConntrackFlows(self.flows.new_flow_id)
        self.tally = HostTally()
        self.stats = PipelineStats()
        self.malformed: Counter[str] = Counter()    # reason → packets or messages
        self.skipped: Counter[str] = Counter()      # not malformed, not ours: ICMP, fragments …

    @property
    def blocklist(self) -> Blocklist:
        return self.detector.blocklist

    def swap_blocklist(self, blocklist: Blocklist) -> None:
        """Use a newly compiled blocklist from the next packet on."""
        self.detector.blocklist = blocklist

    def feed(self, ts: float, frame: bytes, link: LinkDecoder) -> None:
        sec = int(ts)
        self.feed_batch(frame, FRAME_RECORD.pack(sec, round((ts - sec) * 1e6), 0, len(frame)),
                        link)

    def feed_batch(self, data: bytes, records: bytes, link: LinkDecoder) -> None:
        eth_ipv4 = _ETH_IPV4.unpack_from
        fast = link is ethernet
        flows = self.flows
        gateway = self.gateway
        detector = self.detector
        ports = self.tunnel_ports
        vxlan_port: int = ports.vxlan
        geneve_port: int = ports.geneve
        nbytes = 0
        # The loop's locals, typed for mypyc (setup.py): it keeps them as C integers.
        sec: int
        usec: int
        off: int
        caplen: int
        etype: int
        vihl: int
        total: int
        frag: int
        proto: int
        src: bytes
        dst: bytes
        sport: int
        dport: int
        word: int
        flags: int
        seq: int
        poff: int
        pend: int
        ip_len: int
        vlan: tuple[int, ...]
        tunnel: Tunnel | None
        # Clients' data, read after the batch's other packets (`_read_client_data`)
        client_data: list[ClientData] = []
        for sec, usec, off, caplen in FRAME_RECORD.iter_unpack(records):
            ts = sec + usec * 1e-6
            end = off + caplen
            nbytes += caplen
            proto = 0
            tunnel = None
            if fast and caplen >= 42:
                # Fast path: untagged Ethernet, IPv4 without options or fragments, whole
                # TCP/UDP header. Anything else takes the general decoders below, which
                # give the same answer for these packets (tests/core/decode/test_fast_path.py).
                etype, vihl, total, frag, proto, src, dst, sport, dport, word = eth_ipv4(data, off)
                if etype != 0x0800 or vihl != 0x45 or frag & 0x3FFF or total + 14 > caplen:
                    proto = 0
                elif proto == 6 and total >= 40:
                    poff = off + 34 + ((data[off + 46] >> 4) << 2)
                    pend = off + 14 + total
                    if poff > pend or poff < off + 54:
                        proto = 0
                    flags, seq, ip_len, vlan = data[off + 47], word, total, ()
                elif proto == 17 and (word >> 16) == total - 20 and total >= 28 \
                        and dport != vxlan_port and dport != geneve_port:
                    poff, pend = off + 42, off + 14 + total
                    flags, seq, ip_len, vlan = 0, 0, total, ()
                else:
                    proto = 0
            if not proto:
                version, l3, vlan = link(data, off, end)
                if isinstance(l3, str):
                    self._count(l3)
                    continue
                decoded = decode_ip(data, l3, end, version)
                if isinstance(decoded, str):
                    self._count(decoded)
                    continue
                proto, dport = decoded[0], decoded[4]
                if proto != PROTO_TCP and (proto != PROTO_UDP
                                           or dport in (vxlan_port, geneve_port)):
                    inner = decapsulate(data, decoded, ports)
                    if isinstance(inner, str):
                        self._count(inner)
                        continue
                    decoded, tunnel = inner
                proto, src, dst, sport, dport, flags, seq, poff, pend, ip_len, _ = decoded
            table = flows
            if gateway and sport not in DNS_PORTS and dport not in DNS_PORTS:
                table = self.name_flows
            if ts >= table.next_deadline:
                if client_data:                 # read before any flow can end
                    self._read_client_data(data, client_data)
                table.expire(ts)
            flow, is_new, forward = table.update(ts, proto, src, sport, dst, dport, flags,
                                                 ip_len, vlan)
            if is_new and table is flows:
                if tunnel is not None:
                    flow.tunnel = tunnel
                hits = detector.flow_start(ts, flow.flow_id, flow.endpoints, vlan)
                if hits:
                    self._hits(flow, hits)
                if dport in (DOT_PORT, DOH_PORT):
                    self._encrypted_dns(ts, flow.flow_id, flow.endpoints, None)
            if pend > poff:
                if sport in DNS_PORTS or dport in DNS_PORTS:
                    ep = flow.endpoints if forward else new_record(
                        Endpoints, (proto, src, sport, dst, dport))      # as this packet went
                    self._dns(ts, flow, forward, data, poff, pend, seq, ep, vlan)
                elif forward and flow.app is not FINISHED:
                    client_data.append((ts, flow, proto, poff, pend, seq, vlan))
        if client_data:
            self._read_client_data(data, client_data)
        self.stats.packets += len(records) // FRAME_RECORD.size
        self.stats.bytes += nbytes
        self._unreported.clear()

    def tick(self, now: float) -> None:
        """Expire the flows idle at `now`: on a quiet link no packet comes to do it."""
        for table in (self.flows, self.name_flows):
            if now >= table.next_deadline:
                table.expire(now)
        self._unreported.clear()

    def feed_conntrack(self, ts: float, event: ConntrackEvent) -> None:
        """A connection opened or destroyed in the kernel's table (gateway mode). DNS
        connections are left to the captured packets, which carry the messages."""
        ep = event.endpoints
        if ep.proto not in (PROTO_TCP, PROTO_UDP) or ep.sport in DNS_PORTS or (
                ep.dport in DNS_PORTS):
            return
        self.stats.conntrack_events += 1
        if event.new:
            self._conntrack_open(ts, event)
            return
        ended = self.conntrack.close(ts, event)
        if ended is None:                  # opened before the sensor started
            self._conntrack_open(ts, event)
            ended = self.conntrack.close(ts, event)
            assert ended is not None
        self.events.append(ended)

    def _conntrack_open(self, ts: float, event: ConntrackEvent) -> None:
        # The captured packets of the connection may have come first (conntrack events
        # are held back a moment): the connection then takes their flow's id, so its
        # names, their alerts and its flow event share one.
        named = self.name_flows.flows.get(flow_key(*event.endpoints))
        flow = self.conntrack.open(ts, event, None if named is None else named.flow_id)
        if named is not None and named.alerted:
            flow.alerted = True
        hits = self.detector.flow_start(flow.first_ts, flow.flow_id, flow.endpoints, ())
        if hits:
            self._hits(flow, hits)
        self._encrypted_dns(flow.first_ts, flow.flow_id, flow.endpoints, None)

    def finish(self, ts: float = 0.0,
               conntrack_now: Mapping[int, ConntrackEvent] | None = None) -> None:
        """End of input: end every flow still open (conntrack ones with the kernel's
        current counts from `conntrack_now`, when given)."""
        self.flows.flush()
        self.name_flows.flush()
        self._unreported.clear()
        self.events.extend(self.conntrack.close_all(ts, conntrack_now or {}))

    def _count(self, reason: str) -> None:
        if reason in NOT_MALFORMED:
            self.skipped[reason] += 1
        else:
            self.malformed[reason] += 1

    def _hits(self, flow: Flow, hits: list[Hit]) -> None:
        flow.alerted = True
        if flow.tunnel is not None:
            hits = [hit._replace(tunnel=flow.tunnel) for hit in hits]
        self.events.extend(hits)
        for hit in hits:
            self.tally.add(hit)

    def _read_client_data(self, data: bytes, client_data: list[ClientData]) -> None:
        """Read the clients' data gathered from a batch, in order, and forget it.

        Names are read after the packets around them, back to back: their readers (and
        a QUIC Initial's key derivation, calls into the cryptography package) then find
        their code and tables in the CPU's caches, and cost about half as much as
        spread among other packets. A flow's later segments wait in the same list, so
        each reader still takes a flow's data in order; it is read before any flow can
        end, so a flow event carries what its names found."""
        for ts, flow, proto, poff, pend, seq, vlan in client_data:
            if flow.app is not FINISHED:
                self._app(ts, flow, proto, data, poff, pend, seq, vlan)
        client_data.clear()

    def _app(self, ts: float, flow: Flow, proto: int, data: bytes, poff: int, pend: int,
             seq: int, vlan: tuple[int, ...]) -> None:
        """The client's data: ClientHellos (TLS, QUIC) and HTTP requests."""
        app_layer = self.app_layer
        if app_layer is None:
            flow.app = FINISHED
            return
        tracked = self.conntrack.find(flow.endpoints) if self.gateway else None
        if tracked is not None and flow.app is None:
            flow.flow_id = tracked.flow_id      # its names and alerts join conntrack's flow
        problems: list[str] = []
        if proto == PROTO_TCP:
            for found in app_layer.tcp(ts, flow, seq, data, poff, pend, problems):
                if isinstance(found, ClientHello):
                    self._hello(ts, flow, found, vlan, 0)
                else:
                    self._request(ts, flow, found, vlan)
        else:
            hello = app_layer.udp(ts, flow, data, poff, pend, problems)
            if hello is not None:
                self._hello(ts, flow, hello[0], vlan, hello[1])
        for problem in problems:
            self._count(problem)
        if tracked is not None and flow.alerted:
            tracked.alerted = True

    def _hello(self, ts: float, flow: Flow, hello: ClientHello, vlan: tuple[int, ...],
               quic_version: int) -> None:
        if quic_version:
            self.stats.quic_hellos += 1
            self.events.append(new_record(QuicEvent, (ts, flow.flow_id, flow.endpoints, hello,
                                                      quic_version, vlan, flow.tunnel)))
        else:
            self.stats.tls_hellos += 1
            self.events.append(new_record(TlsEvent, (ts, flow.flow_id, flow.endpoints, hello,
                                                     vlan, flow.tunnel)))
        hits = self.detector.client_hello(ts, flow.flow_id, flow.endpoints, hello, vlan,
                                          "quic.sni" if quic_version else "tls.sni")
        if hits:
            self._hits(flow, hits)
        self._encrypted_dns(ts, flow.flow_id, flow.endpoints, hello)

    def _encrypted_dns(self, ts: float, flow_id: int, ep: Endpoints,
                       hello: ClientHello | None) -> None:
        found = self.detector.encrypted_dns(ts, flow_id, ep, hello)
        if found is not None:
            self.stats.encrypted_dns += 1
            self.events.append(found)

    def _request(self, ts: float, flow: Flow, request: HttpRequest,
                 vlan: tuple[int, ...]) -> None:
        self.stats.http_requests += 1
        self.events.append(new_record(HttpEvent, (ts, flow.flow_id, flow.endpoints, request,
                                                  vlan, flow.tunnel)))
        hits = self.detector.http_request(ts, flow.flow_id, flow.endpoints, request, vlan)
        if hits:
            self._hits(flow, hits)

    def _dns(self, ts: float, flow: Flow, forward: bool, data: bytes, poff: int, pend: int,
             seq: int, ep: Endpoints, vlan: tuple[int, ...]) -> None:
        # DNS by its server's port: 53 on either side is DNS, whatever the other port
        # (a client may ask from 5353); otherwise one side is 5353, which is mDNS.
        mdns = ep.sport != DNS_PORT and ep.dport != DNS_PORT
        if ep.proto != PROTO_TCP:
            self._dns_message(ts, flow, data, poff, pend, ep, vlan, mdns)
            return
        streams = flow.dns_streams
        if streams is None:
            streams = flow.dns_streams = {}
        stream = streams.get(forward)
        if stream is None:
            stream = streams[forward] = TcpDnsStream()
        messages, problem = stream.feed(seq, data[poff:pend])
        if problem:
            self.malformed[problem] += 1
        for message in messages:
            self._dns_message(ts, flow, message, 0, len(message), ep, vlan, mdns)

    def _dns_message(self, ts: float, flow: Flow, data: bytes, start: int, end: int,
                     ep: Endpoints, vlan: tuple[int, ...], mdns: bool) -> None:
        message = decode_dns(data, start, end)
        if isinstance(message, str):
            self.malformed[message] += 1
            return
        if message.flags & QR_RESPONSE:
            self.stats.dns_responses += 1
        else:
            self.stats.dns_requests += 1
        self.events.append(new_record(DnsEvent, (ts, flow.flow_id, ep, message, mdns, vlan,
                                                 flow.tunnel)))
        if not mdns:
            hits = self.detector.dns(ts, flow.flow_id, ep, message, vlan)
            if hits:
                self._hits(flow, hits)

"""The bidirectional flow table, driven by packet time only.

All flow state lives here. Nothing reads the clock: every call takes `ts`
(the packet's timestamp), `next_deadline` says when the next flow may expire,
and `expire(now)` ends what is due, so a replay is deterministic and a test
can "wait a week" by passing a bigger number.

Flow life (TCP):     new ──packets both ways──► established
                     any ──RST, or FIN both ways──► closed ──closed timeout──► ended
UDP flows are new until a reply, then established; they end on idle/active
timeout. A full table evicts the least recently created flow.
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable
from dataclasses import dataclass

from sensor.core.decode.ip import PROTO_TCP
from sensor.core.events import Endpoints, FlowEnd, Tunnel, new_record

TCP_FIN, TCP_SYN, TCP_RST, TCP_ACK = 0x01, 0x02, 0x04, 0x10


@dataclass(frozen=True, slots=True)
class FlowTimeouts:
    tcp_idle: float = 300.0
    udp_idle: float = 60.0
    active: float = 1800.0
    closed: float = 5.0        # keep a closed TCP flow briefly for trailing ACKs
    max_flows: int = 500_000


class Flow:
    """One flow's mutable counters; `src`/`sport` is the initiator."""

    __slots__ = ("flow_id", "key", "proto", "src", "sport", "dst", "dport", "endpoints",
                 "first_ts", "last_ts", "pkts_fwd", "bytes_fwd", "pkts_rev", "bytes_rev", "flags",
                 "state", "fins", "end_reason", "alerted", "vlan", "tunnel", "dns_streams")

    def __init__(self, flow_id: int, key: Hashable, proto: int, src: bytes, sport: int,
                 dst: bytes, dport: int, ts: float, vlan: tuple[int, ...]) -> None:
        self.flow_id = flow_id
        self.key = key
        self.proto = proto
        self.src, self.sport, self.dst, self.dport = src, sport, dst, dport
        self.endpoints: Endpoints = new_record(Endpoints, (proto, src, sport, dst, dport))
        self.first_ts = self.last_ts = ts
        self.pkts_fwd = self.bytes_fwd = self.pkts_rev = self.bytes_rev = 0
        self.flags = 0
        self.state = "new"
        self.fins = 0                  # bit 1: initiator sent FIN, bit 2: responder
        self.end_reason = ""
        self.alerted = False
        self.vlan = vlan
        self.tunnel: Tunnel | None = None      # set by the pipeline for a tunnelled flow
        self.dns_streams: dict | None = None   # TcpDnsStream per direction, DNS flows only

    def to_end(self, reason: str) -> FlowEnd:
        return new_record(FlowEnd, (
            self.flow_id, self.endpoints, self.first_ts, self.last_ts, self.pkts_fwd,
            self.bytes_fwd, self.pkts_rev, self.bytes_rev, self.flags, self.state, reason,
            self.alerted, self.vlan, self.tunnel))


def flow_key(proto: int, src: bytes, sport: int, dst: bytes, dport: int) -> tuple:
    """The direction-free 5-tuple: the same for a packet and its reply."""
    if src < dst or (src == dst and sport <= dport):
        return (proto, src, sport, dst, dport)
    return (proto, dst, dport, src, sport)


class FlowTable:
    """Flows keyed by the direction-free 5-tuple; ended flows go to `ended`."""

    def __init__(self, timeouts: FlowTimeouts | None = None, first_flow_id: int = 1,
                 ended: list | None = None) -> None:
        self.timeouts = timeouts or FlowTimeouts()
        self.flows: dict[Hashable, Flow] = {}
        self.ended: list = [] if ended is None else ended    # FlowEnd, in the order they end
        self.evictions = 0
        self.flows_started = 0
        self._next_id = first_flow_id
        self._deadlines: list[tuple[float, int, Hashable]] = []
        self.next_deadline = float("inf")

    def update(self, ts: float, proto: int, src: bytes, sport: int, dst: bytes, dport: int,
               tcp_flags: int, ip_len: int, vlan: tuple[int, ...]) -> tuple[Flow, bool, bool]:
        """Count one packet; return (flow, is_new, sent_by_initiator)."""
        key = flow_key(proto, src, sport, dst, dport)
        flow = self.flows.get(key)
        if flow is None:
            is_new = True
            flow = self._create(key, ts, proto, src, sport, dst, dport, tcp_flags, vlan)
        else:
            is_new = False
            if ts > flow.last_ts:
                flow.last_ts = ts
        forward = src == flow.src and sport == flow.sport
        if forward:
            flow.pkts_fwd += 1
            flow.bytes_fwd += ip_len
        else:
            flow.pkts_rev += 1
            flow.bytes_rev += ip_len
            if flow.state == "new":
                flow.state = "established"
        if proto == PROTO_TCP and tcp_flags:
            flow.flags |= tcp_flags
            if tcp_flags & (TCP_RST | TCP_FIN) and flow.state != "closed":
                self._tcp_close(flow, tcp_flags, forward)
        return flow, is_new, forward

    def _create(self, key: tuple, ts: float, proto: int, src: bytes, sport: int, dst: bytes,
                dport: int, tcp_flags: int, vlan: tuple[int, ...]) -> Flow:
        if len(self.flows) >= self.timeouts.max_flows:
            oldest = self.flows[next(iter(self.flows))]
            self._end(oldest, "table_full")
            self.evictions += 1
        if proto == PROTO_TCP and tcp_flags & (TCP_SYN | TCP_ACK) == TCP_SYN | TCP_ACK:
            src, sport, dst, dport = dst, dport, src, sport    # a SYN-ACK comes from the responder
        flow = Flow(self.new_flow_id(), key, proto, src, sport, dst, dport, ts, vlan)
        self.flows_started += 1
        self.flows[key] = flow
        self._schedule(flow, ts + min(self._idle(proto), self.timeouts.active))
        return flow

    def new_flow_id(self) -> int:
        """The next flow id (also for flows made elsewhere, e.g. from conntrack)."""
        flow_id = self._next_id
        self._next_id += 1
        return flow_id

    def _tcp_close(self, flow: Flow, tcp_flags: int, forward: bool) -> None:
        if tcp_flags & TCP_RST:
            flow.end_reason = "rst"
        else:
            flow.fins |= 1 if forward else 2
            if flow.fins != 3:
                return
            flow.end_reason = "fin"
        flow.state = "closed"
        self._schedule(flow, flow.last_ts + self.timeouts.closed)

    def _idle(self, proto: int) -> float:
        return self.timeouts.tcp_idle if proto == PROTO_TCP else self.timeouts.udp_idle

    def _schedule(self, flow: Flow, deadline: float) -> None:
        heapq.heappush(self._deadlines, (deadline, flow.flow_id, flow.key))
        if deadline < self.next_deadline:
            self.next_deadline = deadline

    def _end(self, flow: Flow, reason: str) -> None:
        del self.flows[flow.key]
        self.ended.append(flow.to_end(reason))

    def expire(self, now: float) -> None:
        """End every flow whose idle, closed or active deadline is at or before `now`."""
        heap = self._deadlines
        while heap and heap[0][0] <= now:
            _, flow_id, key = heapq.heappop(heap)
            flow = self.flows.get(key)
            if flow is None or flow.flow_id != flow_id:
                continue                            # already ended; a stale entry
            idle = self.timeouts.closed if flow.state == "closed" else self._idle(flow.proto)
            idle_at = flow.last_ts + idle
            active_at = flow.first_ts + self.timeouts.active
            if min(idle_at, active_at) > now:
                heapq.heappush(heap, (min(idle_at, active_at), flow_id, key))
            elif flow.state == "closed":
                self._end(flow, flow.end_reason)
            elif active_at <= idle_at:
                self._end(flow, "active_timeout")
            else:
                self._end(flow, "idle_timeout")
        self.next_deadline = heap[0][0] if heap else float("inf")

    def flush(self, reason: str = "end_of_input") -> None:
        """End every flow (end of a capture, shutdown); closed ones keep FIN/RST."""
        ended = self.ended
        for flow in self.flows.values():
            ended.append(flow.to_end(flow.end_reason if flow.state == "closed" else reason))
        self.flows.clear()
        self._deadlines.clear()
        self.next_deadline = float("inf")

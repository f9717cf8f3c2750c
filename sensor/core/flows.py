"""The bidirectional flow table, driven by packet time only.

All flow state lives here. Nothing reads the clock: every call takes `ts`
(the packet's timestamp), `next_deadline` says when the next flow may expire,
and `expire(now)` ends what is due, so a replay is deterministic and a test
can "wait a week" by passing a bigger number.

Flow life (TCP):     new ──packets both ways──► established
                     any ──RST, or FIN both ways──► closed ──closed timeout──► ended
UDP flows are new until a reply, then established; they end on idle/active
timeout.

Floods stay cheap. Every flow has one entry in a wheel of deadlines (see `FlowTable`),
so opening, expiring and evicting a flow cost the same whatever the table holds. A full
table evicts a flow of the earliest second in the wheel. When the table is nearly full
(`EMERGENCY_AT` of `max_flows`), it goes into emergency mode, as Suricata's flow engine
does: flows that have had no answer (a SYN scan, a flood of queries from spoofed
addresses) are given `emergency_idle` seconds instead of the idle timeout, so they are
the ones to go; the mode ends below `EMERGENCY_END` of `max_flows`. Entries and
evictions are counted.
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
    emergency_idle: float = 10.0   # unanswered flows, while the table is nearly full


EMERGENCY_AT, EMERGENCY_END = 0.95, 0.70


class Flow:
    """One flow's mutable counters; its `endpoints` name the initiator first.

    A flow is the table's largest cost per entry, so it holds the 5-tuple once, in
    `endpoints`; and when the initiator is the lower side (`flow_key`'s order, most
    flows a client opens), that same tuple is the table's key too."""

    __slots__ = ("flow_id", "key", "endpoints", "first_ts", "last_ts", "pkts_fwd", "bytes_fwd",
                 "pkts_rev", "bytes_rev", "flags", "state", "fins", "end_reason", "alerted",
                 "vlan", "tunnel", "dns_streams", "app", "deadline")

    def __init__(self, flow_id: int, key: Hashable, endpoints: Endpoints, ts: float,
                 vlan: tuple[int, ...]) -> None:
        self.flow_id = flow_id
        self.key = key
        self.endpoints = endpoints
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
        self.app: object = None        # the client's reader (app_layer.py), once it has data
        self.deadline = 0.0            # when it is next due (its live entry in the wheel)

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
    """Flows keyed by the direction-free 5-tuple; ended flows go to `ended`.

    Deadlines live in a wheel of one-second slots: each slot a list of the keys due in
    that second (rounded up), and a heap of the slots in use. A flow costs the wheel one
    list entry; a flow moved to a later deadline leaves a stale entry behind, skipped
    when its slot comes (the flow's own `deadline` says which entry is live). Flows end
    at most a second after their deadline."""

    def __init__(self, timeouts: FlowTimeouts | None = None, first_flow_id: int = 1,
                 ended: list | None = None) -> None:
        self.timeouts = timeouts or FlowTimeouts()
        self.flows: dict[Hashable, Flow] = {}
        self.ended: list = [] if ended is None else ended    # FlowEnd, in the order they end
        self.evictions = 0
        self.flows_started = 0
        self.emergency = False          # the table is nearly full: see the module's notes
        self.emergencies = 0            # times emergency mode began
        self._next_id = first_flow_id
        self._slots: dict[int, list[Hashable]] = {}     # second → keys due then
        self._seconds: list[int] = []                   # heap of the seconds in `_slots`
        self.next_deadline = float("inf")
        self._emergency_at = int(self.timeouts.max_flows * EMERGENCY_AT)
        self._emergency_end = int(self.timeouts.max_flows * EMERGENCY_END)

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
        ep = flow.endpoints
        forward = src == ep.src and sport == ep.sport
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
        held = len(self.flows)
        if held >= self._emergency_at:
            if not self.emergency:
                self.emergency = True
                self.emergencies += 1
            if held >= self.timeouts.max_flows:
                self._evict()
        if proto == PROTO_TCP and tcp_flags & (TCP_SYN | TCP_ACK) == TCP_SYN | TCP_ACK:
            src, sport, dst, dport = dst, dport, src, sport    # a SYN-ACK comes from the responder
        endpoints: Endpoints = new_record(Endpoints, (proto, src, sport, dst, dport))
        flow = Flow(self.new_flow_id(), endpoints if endpoints == key else key, endpoints, ts,
                    vlan)
        self.flows_started += 1
        self.flows[flow.key] = flow
        idle = self.timeouts.emergency_idle if self.emergency else self._idle(proto)
        self._schedule(flow, ts + min(idle, self.timeouts.active))
        return flow

    def _evict(self) -> None:
        """End a flow of the earliest second in the wheel (stale entries are dropped)."""
        slots, seconds, flows = self._slots, self._seconds, self.flows
        while seconds:
            second = seconds[0]
            keys = slots[second]
            while keys:
                flow = flows.get(keys.pop())
                if flow is not None and _slot(flow.deadline) == second:
                    self._end(flow, "table_full")
                    self.evictions += 1
                    return
            heapq.heappop(seconds)
            del slots[second]

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
        flow.deadline = deadline
        second = _slot(deadline)
        keys = self._slots.get(second)
        if keys is None:
            self._slots[second] = [flow.key]
            heapq.heappush(self._seconds, second)
            if second < self.next_deadline:
                self.next_deadline = float(second)
        else:
            keys.append(flow.key)

    def _end(self, flow: Flow, reason: str) -> None:
        flows = self.flows
        del flows[flow.key]
        if self.emergency and len(flows) < self._emergency_end:
            self.emergency = False
        self.ended.append(flow.to_end(reason))

    def expire(self, now: float) -> None:
        """End every flow whose idle, closed or active deadline is at or before `now`
        (those due in a second not yet over wait for it)."""
        slots, seconds, flows = self._slots, self._seconds, self.flows
        timeouts = self.timeouts
        while seconds and seconds[0] <= now:
            second = heapq.heappop(seconds)
            for key in slots.pop(second):
                flow = flows.get(key)
                if flow is None or _slot(flow.deadline) != second:
                    continue                        # already ended or moved: a stale entry
                if flow.state == "closed":
                    idle = timeouts.closed
                elif self.emergency and flow.state == "new":
                    idle = timeouts.emergency_idle
                else:
                    idle = self._idle(flow.endpoints.proto)
                idle_at = flow.last_ts + idle
                active_at = flow.first_ts + timeouts.active
                if min(idle_at, active_at) > now:
                    self._schedule(flow, min(idle_at, active_at))
                elif flow.state == "closed":
                    self._end(flow, flow.end_reason)
                elif active_at <= idle_at:
                    self._end(flow, "active_timeout")
                else:
                    self._end(flow, "idle_timeout")
        self.next_deadline = float(seconds[0]) if seconds else float("inf")

    def flush(self, reason: str = "end_of_input") -> None:
        """End every flow (end of a capture, shutdown); closed ones keep FIN/RST. The wheel
        goes first and each flow as it ends, so the flows and their ends are never all
        held at once."""
        self._slots.clear()
        self._seconds.clear()
        self.next_deadline = float("inf")
        self.emergency = False
        ended, flows = self.ended, self.flows
        for key in list(flows):
            flow = flows.pop(key)
            ended.append(flow.to_end(flow.end_reason if flow.state == "closed" else reason))


def _slot(deadline: float) -> int:
    """The wheel's second for a deadline: the whole second it falls in, rounded up."""
    second = int(deadline)
    return second if second == deadline else second + 1

"""Flows from the kernel's connection tracking, for a sensor on the gateway itself.

The kernel already follows every connection through the gateway; reading its
NEW and DESTROY events costs two messages per connection whatever the packet
rate. `ConntrackFlows` turns them into the flows the packet path would have
made: a NEW event opens a flow (and is where detection runs, as at a flow's
first packet), a DESTROY event ends it with the kernel's packet and byte
counts (zero unless `nf_conntrack_acct` is on). Connections already open when
the sensor starts, or whose NEW event was lost, are opened at their DESTROY.

A DESTROY event does not say how the connection ended (the TCP state is only
in UPDATE events, several per connection, which the sensor does not take to
stay cheap), so these flows end with reason `conntrack`; the state is
`established` when the peer answered.

Addresses: the original direction's source is the initiator; its peer is the
reply direction's source, which is the real server after destination NAT
(a port forward) and the original destination otherwise. Nothing here reads
the clock or does I/O; the netlink socket is in `sources/conntrack.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import NamedTuple

from sensor.core.events import Endpoints, FlowEnd
from sensor.core.flows import Flow

IPS_SEEN_REPLY = 1 << 1


class ConntrackEvent(NamedTuple):
    """One conntrack message: a connection appeared (`new`) or was destroyed."""

    new: bool
    ct_id: int
    endpoints: Endpoints        # initiator → real peer (see the module docstring)
    pkts_orig: int = 0
    bytes_orig: int = 0
    pkts_reply: int = 0
    bytes_reply: int = 0
    status: int = 0             # IPS_* bits
    start: float | None = None  # CTA_TIMESTAMP_* when nf_conntrack_timestamp is on
    stop: float | None = None


class ConntrackFlows:
    """Open conntrack connections by conntrack id (bounded by the kernel's table)."""

    def __init__(self, new_flow_id: Callable[[], int]) -> None:
        self.new_flow_id = new_flow_id
        self.flows: dict[int, Flow] = {}
        self._by_endpoints: dict[Endpoints, Flow] = {}

    def open(self, ts: float, event: ConntrackEvent, flow_id: int | None = None) -> Flow:
        """A flow for a connection, with a new id unless given one."""
        flow = Flow(self.new_flow_id() if flow_id is None else flow_id, event.ct_id,
                    event.endpoints, event.start or ts, ())
        self.flows[event.ct_id] = flow
        self._by_endpoints[event.endpoints] = flow
        return flow

    def find(self, endpoints: Endpoints) -> Flow | None:
        """The open connection between these endpoints (initiator first), so that what
        the captured packets show of it (names inside, alerts on them) carries its id."""
        return self._by_endpoints.get(endpoints)

    def close(self, ts: float, event: ConntrackEvent) -> FlowEnd | None:
        """End the flow a DESTROY event names, with the kernel's counts; None when the
        connection was never opened here (the caller opens it first)."""
        flow = self.flows.pop(event.ct_id, None)
        if flow is None:
            return None
        if self._by_endpoints.get(flow.endpoints) is flow:
            del self._by_endpoints[flow.endpoints]
        _settle(flow, ts, event)
        return flow.to_end("conntrack")

    def close_all(self, ts: float, current: Mapping[int, ConntrackEvent]) -> list[FlowEnd]:
        """End every open flow (the sensor stops), with the kernel's current counts
        for those in `current` (a dump of the table, when it could be read)."""
        ended = []
        for ct_id, flow in self.flows.items():
            event = current.get(ct_id)
            if event is not None:
                _settle(flow, ts, event)
            ended.append(flow.to_end("end_of_input"))
        self.flows.clear()
        self._by_endpoints.clear()
        return ended


def _settle(flow: Flow, ts: float, event: ConntrackEvent) -> None:
    flow.last_ts = max(event.stop or ts, flow.first_ts)
    flow.pkts_fwd, flow.bytes_fwd = event.pkts_orig, event.bytes_orig
    flow.pkts_rev, flow.bytes_rev = event.pkts_reply, event.bytes_reply
    if event.pkts_reply or event.status & IPS_SEEN_REPLY:
        flow.state = "established"

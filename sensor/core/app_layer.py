"""The names inside connections: which reader a flow's client data goes to, and how
many flows may wait for more of it.

The client's first data on a TCP flow decides: a TLS handshake record goes to
`HelloAssembly`, an HTTP method to `HttpRequests`, anything else ends the flow's
reading for good. On UDP, a first datagram with a QUIC long header goes to
`QuicInitials`. A flow whose reader holds part of a message waits; waiting is
bounded three ways, each counted when it bites: `MAX_WAITING_FLOWS` flows,
`MAX_WAITING_BYTES` bytes over all of them, and `WAIT_SECONDS` per wait (a
ClientHello's segments arrive within a round trip), so a flood of half-sent hellos
costs a known amount of memory.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Final

from sensor.core.decode.http1 import HttpRequests, starts_request
from sensor.core.decode.quic import QuicInitials, is_long_header
from sensor.core.decode.tls import RECORD_HANDSHAKE, HelloAssembly
from sensor.core.events import ClientHello, HttpRequest
from sensor.core.flows import Flow

MAX_WAITING_FLOWS: Final = 100_000
MAX_WAITING_BYTES: Final = 128 << 20
WAIT_SECONDS: Final = 30.0
FINISHED = "finished"           # flow.app once nothing more is read from the flow

Found = ClientHello | HttpRequest


def _held(app: object) -> int:
    """Bytes a reader keeps between packets."""
    if isinstance(app, QuicInitials):
        return sum(len(piece) for piece in app.crypto.values())
    if isinstance(app, (HelloAssembly, HttpRequests)):
        return len(app.data)
    return 0


class AppLayer:
    def __init__(self, max_flows: int = MAX_WAITING_FLOWS, max_bytes: int = MAX_WAITING_BYTES,
                 wait_seconds: float = WAIT_SECONDS) -> None:
        self.max_flows = max_flows
        self.max_bytes = max_bytes
        self.wait_seconds = wait_seconds
        # flow id → (flow, bytes held, since when), oldest first
        self.waiting: OrderedDict[int, tuple[Flow, int, float]] = OrderedDict()
        self.waiting_bytes = 0

    def tcp(self, ts: float, flow: Flow, seq: int, buf: bytes, off: int, end: int,
            problems: list[str]) -> list[Found]:
        """What one client segment completes; reasons it stops reading go to `problems`."""
        app = flow.app
        if app is None:
            if buf[off] == RECORD_HANDSHAKE:
                app = HelloAssembly()
            elif starts_request(buf, off, end):
                app = HttpRequests()
            else:
                flow.app = FINISHED
                return []
            flow.app = app
        found: list[Found] = []
        if isinstance(app, HelloAssembly):
            hello = app.feed(seq, buf, off, end)
            if isinstance(hello, str):
                if hello != "tls.partial":
                    problems.append(hello)
                    flow.app = FINISHED
            else:
                found.append(hello)
                flow.app = FINISHED
        elif isinstance(app, HttpRequests):
            requests, stop = app.feed(seq, buf, off, end)
            found.extend(requests)
            if stop == "http.connect":              # a proxy's tunnel: TLS follows
                flow.app = None
            elif stop:
                problems.append(stop)
                flow.app = FINISHED
        self._wait(ts, flow, problems)
        return found

    def udp(self, ts: float, flow: Flow, buf: bytes, off: int, end: int,
            problems: list[str]) -> tuple[ClientHello, int] | None:
        """(ClientHello, QUIC version) once a client datagram completes it."""
        app = flow.app
        if not is_long_header(buf, off, end):
            if app is None:                 # the first datagram is not QUIC's
                flow.app = FINISHED
            return None
        if app is None:
            app = flow.app = QuicInitials()
        elif not isinstance(app, QuicInitials):
            return None
        hello = app.feed(buf, off, end)
        found: tuple[ClientHello, int] | None = None
        if isinstance(hello, str):
            if hello != "quic.partial":
                problems.append(hello)
                flow.app = FINISHED
        else:
            found = (hello, app.version)
            flow.app = FINISHED
        self._wait(ts, flow, problems)
        return found

    def _wait(self, ts: float, flow: Flow, problems: list[str]) -> None:
        """Keep the bounds after a flow's reader has taken a packet."""
        waiting = self.waiting
        before = waiting.get(flow.flow_id) if waiting else None
        if before is None and flow.app is FINISHED:
            return                  # the usual case: read whole from one packet
        held = _held(flow.app)
        if before is not None:
            self.waiting_bytes -= before[1]
            if held:                                # in place: the order stays by `since`
                waiting[flow.flow_id] = (flow, held, before[2])
            else:
                del waiting[flow.flow_id]
        elif held:
            waiting[flow.flow_id] = (flow, held, ts)
        self.waiting_bytes += held
        while waiting:
            flow_id, (oldest, size, since) = next(iter(waiting.items()))
            if since + self.wait_seconds < ts:
                problems.append("app.wait_timeout")
            elif len(waiting) > self.max_flows or self.waiting_bytes > self.max_bytes:
                problems.append("app.waiting_limit")
            else:
                break
            del waiting[flow_id]
            self.waiting_bytes -= size
            oldest.app = FINISHED

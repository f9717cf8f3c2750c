"""DNS over TCP (RFC 7766 §8): length-prefixed messages in one direction of a flow.

A `TcpDnsStream` is fed the segments of one direction in arrival order; it
drops retransmitted bytes, restarts at a gap (counting it), and returns each
complete message. Several messages per segment and messages split across
segments both work. The buffer is bounded by construction: after each feed it
holds less than one whole message (at most 65,536 bytes).
"""

from __future__ import annotations

from sensor.core.decode.segments import SEQ_MASK, in_order


class TcpDnsStream:
    __slots__ = ("next_seq", "buffer")

    def __init__(self) -> None:
        self.next_seq: int | None = None
        self.buffer = bytearray()

    def feed(self, seq: int, data: bytes) -> tuple[list[bytes], str | None]:
        """Add one segment's payload; return (complete messages, problem or None)."""
        problem = None
        if self.next_seq is not None:
            new = in_order(self.next_seq, seq, data)
            if new is None:                         # bytes missing: resync here
                self.buffer.clear()
                problem = "dns.tcp_gap"
            elif not new:
                return [], None
            else:
                data, seq = new, (seq + len(data) - len(new)) & SEQ_MASK
        self.next_seq = (seq + len(data)) & SEQ_MASK
        buf = self.buffer
        buf += data
        messages = []
        while len(buf) >= 2:
            size = (buf[0] << 8) | buf[1]
            if len(buf) < 2 + size:
                break
            messages.append(bytes(buf[2:2 + size]))
            del buf[:2 + size]
        return messages, problem

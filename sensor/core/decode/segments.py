"""One direction of a TCP flow, in order: what a new segment adds to the bytes had.

The stream readers (DNS over TCP, a ClientHello spread over segments, HTTP
requests) keep the next sequence number they expect and pass each segment
through `in_order`: retransmitted bytes are dropped, and a segment that starts
past the expected number (bytes lost, or arriving out of order) is a gap, which
each reader handles its own way.
"""

from __future__ import annotations

from typing import Final

SEQ_MASK: Final = 0xFFFFFFFF
HALF_SPACE: Final = 0x80000000


def in_order(next_seq: int, seq: int, data: bytes) -> bytes | None:
    """The part of `data` (starting at `seq`) past `next_seq`; None when bytes before
    `data` are missing. Sequence numbers wrap (RFC 9293 §3.4)."""
    if seq == next_seq:
        return data
    behind = (next_seq - seq) & SEQ_MASK
    if behind < HALF_SPACE:                 # a retransmission or overlap
        return data[behind:]
    return None

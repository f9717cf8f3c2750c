#!/usr/bin/env python3
"""Gateway mode's cost per connection: conntrack NEW + DESTROY messages, as the kernel
multicasts them (IPv4 TCP, with counters), decoded and fed to the pipeline on one core.

The messages are built once with pyroute2's encoder; what is timed is what the daemon
does per netlink datagram: `parse_messages` (pyroute2's decoder) and
`Pipeline.feed_conntrack` (detection at NEW, the flow's end at DESTROY).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sensor.core.pipeline import Pipeline  # noqa: E402
from sensor.sources.conntrack import parse_messages  # noqa: E402
from tests.ctnetlink_messages import DESTROY, NEW, message  # noqa: E402

CONNECTIONS = 20_000
PER_DATAGRAM = 16        # messages the kernel packs into one datagram under load


def main() -> None:
    new, end = [], []
    for i in range(CONNECTIONS):
        host, port = f"10.9.{i // 250 % 250}.{i % 250 + 1}", 1024 + i % 60000
        new.append(message(NEW, i, host, "203.0.113.9", port, 443))
        end.append(message(DESTROY, i, host, "203.0.113.9", port, 443,
                           counters=(10, 900, 12, 14000), status=0x20E))
    datagrams = [b"".join(part[i:i + PER_DATAGRAM]) for part in (new, end)
                 for i in range(0, CONNECTIONS, PER_DATAGRAM)]
    pipeline = Pipeline()
    started = time.perf_counter()
    for datagram in datagrams:
        for event in parse_messages(datagram):
            pipeline.feed_conntrack(0.0, event)
        pipeline.events.clear()
    elapsed = time.perf_counter() - started
    decode_started = time.perf_counter()
    for datagram in datagrams:
        parse_messages(datagram)
    decode = time.perf_counter() - decode_started
    print(f"conntrack: {CONNECTIONS:,} connections (NEW + DESTROY) in {elapsed:.2f} s: "
          f"{CONNECTIONS / elapsed:,.0f} connections/s, {2 * CONNECTIONS / elapsed:,.0f} "
          f"messages/s on one core; decoding alone {decode / elapsed:.0%} of the time")


if __name__ == "__main__":
    main()

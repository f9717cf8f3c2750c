"""EVE lines as the writer produces them, beyond what the replay tests read back."""

from __future__ import annotations

import io
import json
from datetime import timedelta, timezone

from sensor.core.events import Endpoints, FlowEnd
from sensor.sinks.eve import EveWriter, Timestamps

HANOI = timezone(timedelta(hours=7))
CLIENT, SERVER = bytes((10, 1, 0, 7)), bytes((192, 0, 2, 80))


def flow_end(flow_id: int, ts: float) -> FlowEnd:
    return FlowEnd(flow_id, Endpoints(6, CLIENT, 40000 + flow_id % 20000, SERVER, 443),
                   ts - 2.5, ts, 5, 400, 4, 3000, 0x1B, "closed", "fin", False)


def test_timestamps_carry_microseconds_and_the_offset() -> None:
    stamp = Timestamps(HANOI).text
    assert stamp(1662944043.512233) == "2022-09-12T07:54:03.512233+0700"
    assert stamp(1662944043.0) == "2022-09-12T07:54:03.000000+0700"
    # rounding up to a whole second moves to the next second, not to ".1000000"
    assert stamp(1662944043.9999997) == "2022-09-12T07:54:04.000000+0700"


def test_many_events_at_once_give_one_line_each_in_order() -> None:
    out = io.BytesIO()
    writer = EveWriter(out, tz=HANOI)
    events = [flow_end(n, 1662944043.0 + n / 1000) for n in range(1, 1300)]
    writer.write(events)
    lines = out.getvalue().decode().splitlines()
    assert writer.written == len(lines) == len(events)
    records = [json.loads(line) for line in lines]
    assert [r["flow_id"] for r in records] == [e.flow_id for e in events]
    first = records[0]
    assert first["event_type"] == "flow" and first["src_ip"] == "10.1.0.7"
    assert first["flow"]["start"] == "2022-09-12T07:54:00.501000+0700"
    assert first["flow"]["end"] == first["timestamp"] == "2022-09-12T07:54:03.001000+0700"
    assert first["flow"]["age"] == 2 and first["tcp"] == {"tcp_flags": "1b"}

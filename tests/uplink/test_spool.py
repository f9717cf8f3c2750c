"""The on-disk spool: order, acknowledgement, restarts, the size cap."""

from __future__ import annotations

from pathlib import Path

import pytest

from sensor.uplink.spool import Spool, decode


def batch(n: int, alerts: int = 1, host: str = "192.168.1.10") -> dict:
    return {"alerts": [{"n": n, "pad": "x" * 200}] * alerts,
            "counts": [{"host_ip": host, "host_mac": None, "hour": 0, "indicator": "e.example",
                        "indicator_type": "domain", "hits": n, "first": float(n),
                        "last": float(n)}],
            "hosts_seen": [], "dropped_alerts": 0}


def test_batches_leave_in_order_and_only_when_acknowledged(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db", "gw1")
    spool.append([batch(1), batch(2)])
    sequence, body = spool.head()
    assert sequence == 1 and decode(body)["counts"][0]["hits"] == 1
    assert spool.head()[0] == 1                     # not acknowledged: still the head
    spool.ack(1)
    assert spool.head()[0] == 2 and spool.depth == 1


def test_a_restarted_spool_keeps_its_batches_stream_and_sequence(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db", "gw1")
    spool.append([batch(1), batch(2)])
    spool.ack(1)
    stream = spool.stream
    spool.close()
    again = Spool(tmp_path / "s.db", "gw1")
    assert again.stream == stream and again.head()[0] == 2
    again.append([batch(3)])
    envelope = decode(dict(again._db.execute("SELECT sequence, body FROM batch").fetchall())[3])
    assert (envelope["sensor"], envelope["stream"], envelope["sequence"]) == ("gw1", stream, 3)


def test_a_new_spool_file_is_a_new_stream(tmp_path: Path) -> None:
    assert Spool(tmp_path / "a.db", "gw1").stream != Spool(tmp_path / "b.db", "gw1").stream


def test_a_spool_refuses_another_sensor_id(tmp_path: Path) -> None:
    Spool(tmp_path / "s.db", "gw1").close()
    with pytest.raises(ValueError, match="is the spool of sensor 'gw1', not"):
        Spool(tmp_path / "s.db", "gw2")


def test_a_full_spool_merges_counts_and_counts_dropped_alerts(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db", "gw1", max_bytes=6000)
    for n in range(1, 41):
        spool.append([batch(n, alerts=20, host=f"192.168.1.{n % 3}")])
    assert spool.bytes <= 6000 + 2000           # at most the newest batch over the cap
    bodies = [decode(body) for _, body in spool._db.execute(
        "SELECT sequence, body FROM batch ORDER BY sequence").fetchall()]
    assert sum(c["hits"] for b in bodies for c in b["counts"]) == sum(range(1, 41))
    kept_alerts = sum(len(b["alerts"]) for b in bodies)
    assert spool.dropped_alerts == 40 * 20 - kept_alerts > 0
    assert sum(b["dropped_alerts"] for b in bodies) == spool.dropped_alerts
    assert bodies[0]["sequence"] == 1 and bodies[0]["alerts"]   # the head is never merged


def test_back_fill_checkpoints_are_kept_with_the_batches(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db", "gw1")
    spool.append([batch(1), batch(2)], checkpoint="k")
    spool.append([batch(3)], checkpoint="k", finished=True)
    assert spool.checkpoint("k") == (3, True)
    spool.reset_checkpoint("k")
    assert spool.checkpoint("k") == (0, False)


def test_a_refused_batch_is_set_aside_not_lost(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db", "gw1")
    spool.append([batch(1), batch(2)])
    spool.reject(1, "400 bad")
    assert spool.head()[0] == 2
    assert spool._db.execute("SELECT sequence, reason FROM rejected").fetchall() == [(1, "400 bad")]

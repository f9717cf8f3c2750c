"""The on-disk spool: order, acknowledgement, restarts, the size cap."""

from __future__ import annotations

from pathlib import Path

import pytest

from sensor.uplink.spool import Spool, decode, encode


def batch(n: int, alerts: int = 1, host: str = "192.168.1.10") -> dict:
    return {"alerts": [{"n": n, "pad": "x" * 200}] * alerts,
            "counts": [{"host_ip": host, "host_mac": None, "hour": 0, "indicator": "e.example",
                        "indicator_type": "domain", "hits": n, "first": float(n),
                        "last": float(n)}],
            "hosts_seen": [], "dropped_alerts": 0}


def rows(spool: Spool) -> list[tuple[int, dict]]:
    return [(sequence, decode(body)) for sequence, body in spool._db.execute(
        "SELECT sequence, body FROM batch ORDER BY sequence").fetchall()]


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
    bodies = [body for _, body in rows(spool)]
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


def test_a_spool_file_is_made_with_its_folder_for_its_owner_alone(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "a" / "b" / "s.db", "gw1")
    assert (tmp_path / "a" / "b" / "s.db").stat().st_mode & 0o777 == 0o600
    assert len(spool.stream) == 32 and int(spool.stream, 16) >= 0
    assert (spool.bytes, spool.depth, spool.last_appended, spool.waiting()) == (0, 0, 0, 0)


def test_an_organisations_spool_names_an_organisation(tmp_path: Path) -> None:
    Spool(tmp_path / "u.db", "Hải Phòng", source="organisation").close()
    with pytest.raises(ValueError, match="is the spool of organisation 'Hải Phòng', not "
                                         "'Đồng Nai': another organisation uses this file"):
        Spool(tmp_path / "u.db", "Đồng Nai", source="organisation")
    again = Spool(tmp_path / "u.db", "Hải Phòng", source="organisation", mergeable=False)
    again.append([batch(1)])
    assert decode(again.head()[1])["organisation"] == "Hải Phòng"


def test_sizes_follow_appends_acks_and_rejections(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db", "gw1")
    spool.append([batch(1), batch(2), batch(3)])
    sizes = [len(body) for _, body in spool._db.execute(
        "SELECT sequence, body FROM batch ORDER BY sequence")]
    assert (spool.bytes, spool.depth, spool.last_appended) == (sum(sizes), 3, 3)
    spool.ack(1)
    spool.ack(1)                                     # twice: the second changes nothing
    assert (spool.bytes, spool.depth) == (sizes[1] + sizes[2], 2)
    spool.reject(2, "400 counts[0].hits: must be 1 or more")
    assert (spool.bytes, spool.depth, spool.head()[0]) == (sizes[2], 1, 3)
    assert spool._db.execute("SELECT sequence, reason FROM rejected").fetchall() == [
        (2, "400 counts[0].hits: must be 1 or more")]
    again = Spool(tmp_path / "s.db", "gw1")
    assert (again.bytes, again.depth) == (sizes[2], 1)


def test_a_process_waits_for_its_own_batches_only(tmp_path: Path) -> None:
    daemon = Spool(tmp_path / "s.db", "gw1")
    daemon.append([batch(1), batch(2)])
    replay = Spool(tmp_path / "s.db", "gw1")
    assert replay.waiting() == 2                     # spooled none itself: all of them
    replay.append([batch(3)])
    daemon.append([batch(4)])
    assert (replay.last_appended, replay.waiting()) == (3, 3)
    replay.ack(1)
    replay.ack(3)
    assert (replay.waiting(), daemon.waiting()) == (1, 2)


def test_a_back_fill_checkpoint_counts_its_batches_and_its_end(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db", "gw1")
    assert spool.checkpoint("office.pcap") == (0, False)
    spool.append([batch(1), batch(2)], checkpoint="office.pcap")
    spool.append([batch(3)], checkpoint="office.pcap", finished=True)
    spool.append([batch(4)], checkpoint="other.pcap")
    assert spool.checkpoint("office.pcap") == (3, True)
    assert spool.checkpoint("other.pcap") == (1, False)
    spool.reset_checkpoint("office.pcap")
    assert spool.checkpoint("office.pcap") == (0, False)
    assert spool.checkpoint("other.pcap") == (1, False)


def test_compaction_merges_the_oldest_behind_the_head_and_keeps_the_newest(
        tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db", "gw1", max_bytes=10**9)
    spool.append([batch(n, alerts=20) for n in range(1, 7)])
    spool.max_bytes = 10                             # far over: all but head and newest
    spool.append([batch(7, alerts=20)])
    kept = rows(spool)
    assert [sequence for sequence, _ in kept] == [1, 2, 7]
    assert (spool.depth, spool.waiting()) == (3, 3)
    assert spool.bytes == sum(len(body) for _, body in spool._db.execute(
        "SELECT sequence, body FROM batch"))
    merged = kept[1][1]
    assert (merged["sensor"], merged["stream"], merged["sequence"]) == ("gw1", spool.stream, 2)
    assert merged["alerts"] == [] and merged["dropped_alerts"] == 5 * 20
    assert [c["hits"] for c in merged["counts"]] == [2 + 3 + 4 + 5 + 6]
    assert spool.dropped_alerts == 100
    assert kept[0][1]["alerts"] and kept[2][1]["alerts"]      # the head and the newest


def test_compaction_stops_once_the_spool_would_be_under_half_its_cap(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db", "gw1", max_bytes=10**9)
    spool.append([batch(n, alerts=20) for n in range(1, 9)])
    sizes = dict(spool._db.execute("SELECT sequence, LENGTH(body) FROM batch"))
    spool.max_bytes = spool.bytes - sizes[8] - 1     # batch 9 takes it over the cap
    spool.append([batch(9, alerts=20)])
    total = sum(sizes.values()) + dict(spool._db.execute(
        "SELECT sequence, LENGTH(body) FROM batch WHERE sequence = 9"))[9]
    victims, freed = [], 0
    for sequence in range(2, 9):                     # the rule, from the sizes
        victims.append(sequence)
        freed += sizes[sequence]
        if total - freed <= spool.max_bytes // 2 and len(victims) > 1:
            break
    kept = [sequence for sequence, _ in rows(spool)]
    assert kept == [1, victims[0], *range(victims[-1] + 1, 10)], (victims, kept)
    assert spool.dropped_alerts == 20 * len(victims)


def test_nothing_is_merged_when_one_batch_would_be(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db", "gw1", max_bytes=10**9)
    spool.append([batch(1, alerts=20), batch(2, alerts=20)])
    spool.max_bytes = 10
    spool.append([batch(3, alerts=20)])
    assert [sequence for sequence, _ in rows(spool)] == [1, 2, 3]
    assert spool.dropped_alerts == 0
    unmergeable = Spool(tmp_path / "u.db", "gw1", max_bytes=10, mergeable=False)
    unmergeable.append([batch(n, alerts=20) for n in range(1, 6)])
    assert unmergeable.depth == 5


def test_a_body_is_the_same_bytes_whenever_it_is_made() -> None:
    body = encode({"sequence": 1})
    assert body[4:8] == b"\x00\x00\x00\x00"          # gzip's time field: none
    assert body[8] == 0                              # neither the fastest nor the smallest
    assert decode(body) == {"sequence": 1}

"""QUIC Initial packets from a real client and server (pcaps/quic/, aioquic versions 1
and 2, made by pcaps/capture_apps.py): the ClientHello's server name and JA3 are what
tshark reads after decrypting the Initials, also when the ClientHello spans three
Initial packets; a listed name is a `quic.sni` hit; EVE has Suricata's `quic` event; no
bytes raise and a flow's CRYPTO data stays within its bound."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sensor.core.decode.quic import MAX_CRYPTO, VERSION_1, VERSION_2, QuicInitials
from sensor.core.events import ClientHello, addr_text
from sensor.sources.pcapfile import CaptureFile
from tests.conftest import PCAPS, ROOT, RULES, examples, run_pipeline
from tests.tshark_oracle import tshark

CAPTURES = sorted((PCAPS / "quic").glob("*.pcap"))


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_server_name_and_ja3_are_tsharks(path: Path) -> None:
    out = tshark(path, "-Y", "tls.handshake.type == 1", "-T", "fields", "-e", "ip.src",
                 "-e", "tls.handshake.extensions_server_name", "-e", "tls.handshake.ja3")
    ours = [(addr_text(e.endpoints.src), e.hello.sni, e.hello.ja3_hash)
            for e in run_pipeline([path]).quic]
    assert ours and ours == [tuple(line.split("\t")) for line in out.splitlines()]


def test_versions_and_hits() -> None:
    outcome = run_pipeline(CAPTURES, [RULES])
    assert [(e.version, e.hello.sni, e.hello.ja4[:4], len(e.hello.alpn)) for e in outcome.quic] \
        == [(VERSION_1, "malhost.example", "q13d", 1), (VERSION_2, "c2-panel.example", "q13d", 11)]
    assert sorted((h.match, h.seen, addr_text(h.host)) for h in outcome.hits) == [
        ("quic.sni", "c2-panel.example", "10.77.0.10"),
        ("quic.sni", "malhost.example", "10.77.0.10")]
    assert not outcome.pipeline.malformed and not outcome.pipeline.app_layer.waiting


def test_eve_has_suricatas_quic_event(tmp_path: Path) -> None:
    eve = tmp_path / "eve.json"
    run = [sys.executable, "-m", "sensor", "replay", "--rules", str(RULES), "--eve", str(eve),
           *map(str, CAPTURES)]
    assert subprocess.run(run, capture_output=True, cwd=ROOT).returncode == 0
    events = [json.loads(line) for line in eve.read_text().splitlines()]
    quic = [e for e in events if e["event_type"] == "quic"]
    assert [(e["app_proto"], e["quic"]["version"], e["quic"]["sni"]) for e in quic] == [
        ("quic", "1", "malhost.example"), ("quic", "2", "c2-panel.example")]
    assert all(e["quic"]["ja4"].startswith("q13d") for e in quic)
    alerts = [e for e in events if e["event_type"] == "alert"]
    assert {(a["alert"]["signature_id"], a["quic"]["sni"]) for a in alerts} == {
        (9_000_007, "malhost.example"), (9_000_007, "c2-panel.example")}


def client_initials(path: Path) -> list[bytes]:
    """The client's datagrams that carry Initial packets."""
    payloads = []
    for data, records, _ in CaptureFile(path).batches():
        for at in range(0, len(records), 16):
            off, caplen = (int.from_bytes(records[at + i:at + i + 4], sys.byteorder)
                           for i in (8, 12))
            frame = data[off:off + caplen]
            if frame[26:30] == bytes((10, 77, 0, 10)) and caplen >= 1242 and frame[42] & 0x80:
                payloads.append(frame[42:])
    return payloads


@settings(max_examples=examples(300), deadline=None)
@given(st.data())
def test_no_mutated_initial_raises(data: st.DataObject) -> None:
    packets = [bytearray(p) for p in client_initials(CAPTURES[-1])]
    for _ in range(data.draw(st.integers(1, 4))):
        packet = data.draw(st.sampled_from(packets))
        at = data.draw(st.integers(0, 80))          # the header, and the first frames
        packet[at] = data.draw(st.integers(0, 255))
    initials = QuicInitials()
    for packet in packets:
        result = initials.feed(bytes(packet), 0, len(packet))
        assert isinstance(result, str | ClientHello)
        assert sum(map(len, initials.crypto.values())) <= MAX_CRYPTO
        if result != "quic.partial":
            break


@settings(max_examples=examples(1000), deadline=None)
@given(st.binary(min_size=1200, max_size=1300))
def test_no_bytes_raise(data: bytes) -> None:
    for version in (b"\x00\x00\x00\x01", b"\x6b\x33\x43\xcf"):
        packet = b"\xc3" + version + data
        assert isinstance(QuicInitials().feed(packet, 0, len(packet)), str | ClientHello)

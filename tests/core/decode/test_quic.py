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
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from sensor.core.decode import quic
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


@pytest.mark.parametrize(("version", "iv", "key", "hp"), [
    # RFC 9001 Appendix A.1 (QUIC version 1)
    (quic.VERSION_1, "fa044b2f42a3fd3b46fb255c", "1f369613dd76d5467730efcbe3b1a22d",
     "9f50449e04a0e810283a1e9933adedd2"),
    # RFC 9369 Appendix A.1 (QUIC version 2)
    (quic.VERSION_2, "91f73e2351d8fa91660e909f", "8b1a0bc121284290a29e0971b5cd045d",
     "45b95e15235d6f45a6b19cbcb0294ba9"),
])
def test_initial_keys_are_the_rfcs_test_vectors(version: int, iv: str, key: str,
                                                hp: str) -> None:
    keys = quic.InitialKeys(quic.VERSIONS[version], bytes.fromhex("8394c8f03e515708"))
    assert keys.iv == int(iv, 16)
    nonce = bytes(12)
    assert keys.aead.encrypt(nonce, b"madoc", b"") == AESGCM(bytes.fromhex(key)).encrypt(
        nonce, b"madoc", b"")
    sample = bytes.fromhex("d1b1c98dd7689fb8ec11d242b123dc9b")
    header_protection = Cipher(algorithms.AES(bytes.fromhex(hp)), modes.ECB()).encryptor()
    assert keys.mask.update(sample) == header_protection.update(sample)


def test_version_1s_header_protection_mask_is_rfc_9001s() -> None:
    keys = quic.InitialKeys(quic.VERSIONS[quic.VERSION_1], bytes.fromhex("8394c8f03e515708"))
    sample = bytes.fromhex("d1b1c98dd7689fb8ec11d242b123dc9b")       # Appendix A.2
    assert keys.mask.update(sample)[:5].hex() == "437b9aec36"


@pytest.mark.parametrize(("wire", "value"), [
    # RFC 9000 Appendix A.1
    ("c2197c5eff14e88c", 151_288_809_941_952_652), ("9d7f3e7d", 494_878_333),
    ("7bbd", 15_293), ("25", 37), ("4025", 37),
])
def test_variable_length_integers_read_as_rfc_9000_says(wire: str, value: int) -> None:
    buf = b"\xff" + bytes.fromhex(wire) + b"\xff"
    assert quic._varint(buf, 1, len(buf) - 1) == (value, len(buf) - 1)
    assert quic._varint(buf, 1, len(buf) - 2) == (-1, len(buf) - 2)     # one byte short
    assert quic._varint(buf, len(buf) - 1, len(buf) - 1) == (-1, len(buf) - 1)


def test_a_long_header_starts_a_padded_initial_datagram_only() -> None:
    assert quic.is_long_header(b"\xc0" + bytes(1199), 0, 1200)
    assert not quic.is_long_header(b"\xc0" + bytes(1199), 0, 1199)
    assert not quic.is_long_header(b"\x80" + bytes(1199), 0, 1200)     # no fixed bit
    assert not quic.is_long_header(b"\x40" + bytes(1199), 0, 1200)     # a short header

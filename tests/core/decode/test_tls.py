"""TLS ClientHellos from real handshakes (pcaps/tls/, openssl s_client against s_server,
and curl through a proxy's CONNECT, made by pcaps/capture_apps.py): the server name and
JA3 are what tshark reads, also for a ClientHello spread over two segments; JA4 is the
specification's own example; a listed name in the SNI is a `tls.sni` hit and a listed
fingerprint a `tls.ja3`/`tls.ja4` hit; EVE has Suricata's `tls` event and object; no
bytes raise and the reassembly stays within its bounds."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sensor.core.decode.tls import MAX_HELLO, HelloAssembly, client_hello
from sensor.core.events import ClientHello, addr_text
from sensor.sources.pcapfile import CaptureFile
from tests.conftest import PCAPS, ROOT, RULES, examples, run_pipeline
from tests.tshark_oracle import tshark

CAPTURES = sorted((PCAPS / "tls").glob("*.pcap"))
WITH_TLS = [*CAPTURES, PCAPS / "http" / "proxy.pcap"]


def hellos_of_tshark(path: Path) -> list[tuple[str, str, str]]:
    out = tshark(path, "-Y", "tls.handshake.type == 1", "-T", "fields", "-e", "ip.src",
                 "-e", "tls.handshake.extensions_server_name", "-e", "tls.handshake.ja3")
    return [tuple(line.split("\t")) for line in out.splitlines()]


@pytest.mark.parametrize("path", WITH_TLS, ids=lambda p: p.name)
def test_server_name_and_ja3_are_tsharks(path: Path) -> None:
    ours = [(addr_text(e.endpoints.src), e.hello.sni, e.hello.ja3_hash)
            for e in run_pipeline([path]).tls]
    assert ours and ours == hellos_of_tshark(path)


def test_a_hello_over_two_segments_is_reassembled() -> None:
    """The long ALPN list takes the ClientHello past one 1,448-byte segment."""
    outcome = run_pipeline([PCAPS / "tls" / "tls13-two-segments.pcap"])
    [event] = outcome.tls
    assert event.hello.sni == "malhost.example" and len(event.hello.alpn) == 10
    assert not outcome.pipeline.malformed and not outcome.pipeline.app_layer.waiting


def test_a_listed_server_name_is_a_hit_with_its_hello() -> None:
    outcome = run_pipeline(CAPTURES, [RULES])
    hits = sorted((h.match, addr_text(h.host), h.seen, h.indicator.value, h.outbound,
                   h.tls.version) for h in outcome.hits)
    assert hits == [("tls.sni", "10.77.0.10", "c2-panel.example", "c2-panel.example", True,
                     0x0303),
                    ("tls.sni", "10.77.0.10", "malhost.example", "malhost.example", True,
                     0x0304),
                    ("tls.sni", "10.77.0.10", "malhost.example", "malhost.example", True,
                     0x0304)]


def _extension(kind: int, body: bytes) -> bytes:
    return kind.to_bytes(2, "big") + len(body).to_bytes(2, "big") + body


def _u16_list(values: list[int], size_bytes: int = 2) -> bytes:
    body = b"".join(v.to_bytes(2, "big") for v in values)
    return len(body).to_bytes(size_bytes, "big") + body


def spec_example_hello() -> bytes:
    """A ClientHello with the ciphers, extensions (in their original order) and signature
    algorithms of the JA4 specification's example (JA4_ro), plus GREASE values, which
    JA4 ignores."""
    ciphers = [0x1A1A, 0x1301, 0x1302, 0x1303, 0xC02B, 0xC02F, 0xC02C, 0xC030, 0xCCA9, 0xCCA8,
               0xC013, 0xC014, 0x009C, 0x009D, 0x002F, 0x0035]
    signatures = [0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601]
    name = b"spec.example"
    bodies = {0x0000: (len(name) + 3).to_bytes(2, "big") + b"\x00" + len(name).to_bytes(2, "big")
              + name,
              0x0010: b"\x00\x03\x02h2", 0x000D: _u16_list(signatures),
              0x002B: _u16_list([0x2A2A, 0x0304, 0x0303], 1), 0x000A: _u16_list([0x001D])}
    order = [0x0A0A, 0x001B, 0x0000, 0x0033, 0x0010, 0x4469, 0x0017, 0x002D, 0x000D, 0x0005,
             0x0023, 0x0012, 0x002B, 0xFF01, 0x000B, 0x000A, 0x0015]
    extensions = b"".join(_extension(kind, bodies.get(kind, b"")) for kind in order)
    body = (b"\x03\x03" + bytes(32) + b"\x00" + _u16_list(ciphers) + b"\x01\x00"
            + len(extensions).to_bytes(2, "big") + extensions)
    handshake = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + len(handshake).to_bytes(2, "big") + handshake


def test_ja4_is_the_specifications_example() -> None:
    """FoxIO's technical_details/JA4.md: JA4 = t13d1516h2_8daaf6152771_e5627efa2ab1."""
    hello = spec_example_hello()
    result = client_hello(hello, 0, len(hello))
    assert isinstance(result, ClientHello)
    assert result.ja4 == "t13d1516h2_8daaf6152771_e5627efa2ab1"


def test_a_listed_fingerprint_is_a_hit(tmp_path: Path) -> None:
    (tmp_path / "ja3.csv").write_text(
        "# ja3_md5,Firstseen,Lastseen,Listingreason\n"
        "22558766122974704364c9c75c5cce0a,2026-11-02 10:00:00,2026-11-30 10:00:00,TestBot\n")
    (tmp_path / "ja4.txt").write_text(
        "# JA4, then what it is\nt13i040900_16476d049b0b_78f1d400d464 no-SNI client\n")
    (tmp_path / "rules.yaml").write_text(
        "sources:\n  - {name: sslbl, path: ja3.csv}\n  - {name: ja4s, path: ja4.txt}\n")
    outcome = run_pipeline(CAPTURES, [tmp_path / "rules.yaml"])
    assert sorted((h.match, h.seen, h.indicator.kind, h.indicator.comment)
                  for h in outcome.hits) == [
        ("tls.ja3", "22558766122974704364c9c75c5cce0a", "ja3", "TestBot"),
        ("tls.ja4", "t13i040900_16476d049b0b_78f1d400d464", "ja4", "no-SNI client")]


def test_eve_has_suricatas_tls_event_and_object(tmp_path: Path) -> None:
    eve = tmp_path / "eve.json"
    run = [sys.executable, "-m", "sensor", "replay", "--eve", str(eve), *map(str, CAPTURES)]
    assert subprocess.run(run, capture_output=True, cwd=ROOT).returncode == 0
    events = [json.loads(line) for line in eve.read_text().splitlines()]
    tls = [e for e in events if e["event_type"] == "tls"]
    assert [(e["tls"].get("sni"), e["tls"]["version"]) for e in tls] == [
        ("c2-panel.example", "TLS 1.2"), (None, "TLS 1.3"), ("malhost.example", "TLS 1.3"),
        ("malhost.example", "TLS 1.3")]
    assert all(e["app_proto"] == "tls" and len(e["tls"]["ja3"]["hash"]) == 32 and
               e["tls"]["ja4"].startswith("t1") for e in tls)
    alerts = [e for e in events if e["event_type"] == "alert"]
    assert {a["tls"]["sni"] for a in alerts} == {"c2-panel.example", "malhost.example"}
    assert {a["alert"]["signature_id"] for a in alerts} == {9_000_006}
    assert subprocess.run([*run[:6], "--no-app", *run[6:]], capture_output=True,
                          cwd=ROOT).returncode == 0
    kinds = {json.loads(line)["event_type"] for line in eve.read_text().splitlines()}
    assert kinds == {"flow"}            # names inside connections not read at all


def first_hello() -> bytes:
    """The TLS 1.3 ClientHello record of tls13-openssl.pcap."""
    for data, _, _ in CaptureFile(PCAPS / "tls" / "tls13-openssl.pcap").batches():
        at = data.find(b"\x16\x03\x01")
        if at >= 0:
            return data[at:at + 5 + int.from_bytes(data[at + 3:at + 5], "big")]
    raise AssertionError("no ClientHello")


def test_a_hello_longer_than_its_segment_is_partial_not_malformed() -> None:
    hello = first_hello()
    assert isinstance(client_hello(hello, 0, len(hello)), ClientHello)
    for cut in (1, 9, 60, len(hello) - 1):
        assert client_hello(hello, 0, cut) == "tls.partial"


@settings(max_examples=examples(2000), deadline=None)
@given(st.binary(max_size=600))
def test_no_bytes_raise(data: bytes) -> None:
    result = client_hello(b"\x16\x03\x01" + data, 0, len(data) + 3)
    assert isinstance(result, str | ClientHello)


@settings(max_examples=examples(2000), deadline=None)
@given(st.data())
def test_no_mutated_hello_raises(data: st.DataObject) -> None:
    hello = bytearray(first_hello())
    for _ in range(data.draw(st.integers(1, 6))):
        at = data.draw(st.integers(0, len(hello) - 1))
        hello[at] = data.draw(st.integers(0, 255))
    result = client_hello(bytes(hello), 0, len(hello))
    assert isinstance(result, str | ClientHello)
    if isinstance(result, ClientHello):
        assert len(result.sni) <= 4 * 253 and result.ja3.count(",") == 4


@settings(max_examples=examples(300), deadline=None)
@given(st.data())
def test_reassembly_in_any_cuts_gives_the_same_hello(data: st.DataObject) -> None:
    """Segments of any size, retransmitted or not, give the hello read whole; the
    assembly never holds more than MAX_HELLO bytes."""
    hello = spec_example_hello()
    whole = client_hello(hello, 0, len(hello))
    cuts = sorted(data.draw(st.sets(st.integers(1, len(hello) - 1), max_size=6)))
    assembly, seq, result = HelloAssembly(), 1000, None
    for start, end in zip([0, *cuts], [*cuts, len(hello)], strict=True):
        if data.draw(st.booleans()) and start:   # a segment overlapping what came before
            back = data.draw(st.integers(1, start))
            assert assembly.feed(seq + start - back, hello, start - back, start) == \
                "tls.partial"                           # a retransmission alone adds nothing
            result = assembly.feed(seq + start - back, hello, start - back, end)
        else:
            result = assembly.feed(seq + start, hello, start, end)
        assert len(assembly.data) <= MAX_HELLO
        if result != "tls.partial":
            break
    assert result == whole


def test_a_gap_or_an_endless_hello_ends_the_wait() -> None:
    hello = spec_example_hello()
    assembly = HelloAssembly()
    assert assembly.feed(0, hello, 0, 100) == "tls.partial"
    assert assembly.feed(150, hello, 150, len(hello)) == "tls.gap"
    too_long = b"\x16\x03\x01\x40\x00\x01\x00\x3f\xfc" + bytes(1000)   # 16,389 bytes
    assert HelloAssembly().feed(0, too_long, 0, len(too_long)) == "tls.too_long"
    spread = b"\x16\x03\x01\x08\x00\x01\x00\x3f\xf0" + bytes(2044)     # more records due
    assembly = HelloAssembly()
    assert assembly.feed(0, spread, 0, len(spread)) == "tls.partial"
    assert assembly.feed(len(spread), b"\x17\x03\x03\x00\x10", 0, 5) == "tls.bad_record"
    assert not assembly.data

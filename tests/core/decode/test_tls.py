"""TLS ClientHellos from real handshakes (pcaps/tls/, openssl s_client against s_server,
made by pcaps/capture_tls.py): the server name and JA3 are what tshark reads, a listed
name in the SNI is a `tls.sni` hit, EVE has Suricata's `tls` event and object, and no
bytes raise."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sensor.core.decode.tls import client_hello
from sensor.core.events import ClientHello, addr_text
from sensor.sources.pcapfile import CaptureFile
from tests.conftest import PCAPS, ROOT, RULES, run_pipeline
from tests.tshark_oracle import tshark

CAPTURES = sorted((PCAPS / "tls").glob("*.pcap"))


def hellos_of_tshark(path: Path) -> list[tuple[str, str, str]]:
    out = tshark(path, "-Y", "tls.handshake.type == 1", "-T", "fields", "-e", "ip.src",
                 "-e", "tls.handshake.extensions_server_name", "-e", "tls.handshake.ja3")
    return [tuple(line.split("\t")) for line in out.splitlines()]


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_server_name_and_ja3_are_tsharks(path: Path) -> None:
    ours = [(addr_text(e.endpoints.src), e.hello.sni, e.hello.ja3_hash)
            for e in run_pipeline([path]).tls]
    assert ours and ours == hellos_of_tshark(path)


def test_a_listed_server_name_is_a_hit_with_its_hello() -> None:
    outcome = run_pipeline(CAPTURES, [RULES])
    hits = sorted((h.match, addr_text(h.host), h.seen, h.indicator.value, h.outbound,
                   h.tls.version) for h in outcome.hits)
    assert hits == [("tls.sni", "10.77.0.10", "c2-panel.example", "c2-panel.example", True,
                     0x0303),
                    ("tls.sni", "10.77.0.10", "malhost.example", "malhost.example", True,
                     0x0304)]


def test_eve_has_suricatas_tls_event_and_object(tmp_path: Path) -> None:
    eve = tmp_path / "eve.json"
    run = [sys.executable, "-m", "sensor", "replay", "--eve", str(eve), *map(str, CAPTURES)]
    assert subprocess.run(run, capture_output=True, cwd=ROOT).returncode == 0
    events = [json.loads(line) for line in eve.read_text().splitlines()]
    tls = [e for e in events if e["event_type"] == "tls"]
    assert [(e["tls"].get("sni"), e["tls"]["version"]) for e in tls] == [
        ("c2-panel.example", "TLS 1.2"), (None, "TLS 1.3"), ("malhost.example", "TLS 1.3")]
    assert all(e["app_proto"] == "tls" and len(e["tls"]["ja3"]["hash"]) == 32 for e in tls)
    alerts = [e for e in events if e["event_type"] == "alert"]
    assert {a["tls"]["sni"] for a in alerts} == {"c2-panel.example", "malhost.example"}
    assert {a["alert"]["signature_id"] for a in alerts} == {9_000_006}
    assert subprocess.run([*run[:6], "--no-app", *run[6:]], capture_output=True,
                          cwd=ROOT).returncode == 0
    kinds = {json.loads(line)["event_type"] for line in eve.read_text().splitlines()}
    assert "tls" not in kinds and "alert" in kinds


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


@settings(max_examples=2000, deadline=None)
@given(st.binary(max_size=600))
def test_no_bytes_raise(data: bytes) -> None:
    result = client_hello(b"\x16\x03\x01" + data, 0, len(data) + 3)
    assert isinstance(result, str | ClientHello)


@settings(max_examples=2000, deadline=None)
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

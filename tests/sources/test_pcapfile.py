"""Capture files: formats, byte orders, precisions, compression, and bad input."""

from __future__ import annotations

import gzip
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from scapy.all import DNS, DNSQR, IP, UDP, Ether, raw

from sensor.sources.pcapfile import CaptureError, CaptureFile
from tests.conftest import PCAPS, run_pipeline

FRAME = raw(Ether(src="02:00:00:00:00:02", dst="02:00:00:00:00:01")
            / IP(src="192.168.1.9", dst="192.168.1.1") / UDP(sport=40000, dport=53)
            / DNS(id=7, rd=1, qd=[DNSQR(qname="bad.malhost.example")]))
TS = (1662944400, 123456)


def write_pcap(path: Path, frames: list[bytes], endian: str = "<", nanos: bool = False,
               linktype: int = 1) -> Path:
    magic = 0xA1B23C4D if nanos else 0xA1B2C3D4
    out = struct.pack(endian + "IHHiIII", magic, 2, 4, 0, 0, 65535, linktype)
    for i, frame in enumerate(frames):
        fraction = TS[1] * 1000 if nanos else TS[1]
        out += struct.pack(endian + "IIII", TS[0] + i, fraction, len(frame), len(frame)) + frame
    path.write_bytes(out)
    return path


def _block(kind: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    length = 12 + len(body)
    return struct.pack("<II", kind, length) + body + struct.pack("<I", length)


def write_pcapng(path: Path, frames: list[bytes], linktypes: tuple[int, int] = (1, 1)) -> Path:
    """Two interfaces; frames alternate EPB on each (Ethernet header dropped on a raw-IP
    interface), then one SPB."""
    out = _block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    for linktype in linktypes:
        out += _block(0x00000001, struct.pack("<HHI", linktype, 0, 65535))
    for i, frame in enumerate(frames):
        micros = (TS[0] + i) * 1_000_000 + TS[1]
        if linktypes[i % 2] == 101:
            frame = frame[14:]
        out += _block(0x00000006, struct.pack("<IIIII", i % 2, micros >> 32, micros & 0xFFFFFFFF,
                                              len(frame), len(frame)) + frame)
    out += _block(0x00000003, struct.pack("<I", len(frames[0])) + frames[0])
    path.write_bytes(out)
    return path


def packets_and_queries(path: Path) -> tuple[int, list[str], list[float]]:
    outcome = run_pipeline([path])
    names = [q.name for event in outcome.dns for q in event.message.questions]
    return outcome.pipeline.stats.packets, names, [event.ts for event in outcome.dns]


@pytest.mark.parametrize("endian", ["<", ">"], ids=["little-endian", "big-endian"])
@pytest.mark.parametrize("nanos", [False, True], ids=["micro", "nano"])
def test_pcap_byte_orders_and_precisions(tmp_path: Path, endian: str, nanos: bool) -> None:
    path = write_pcap(tmp_path / "x.pcap", [FRAME, FRAME], endian, nanos)
    packets, names, stamps = packets_and_queries(path)
    assert (packets, names) == (2, ["bad.malhost.example"] * 2)
    assert stamps[0] == pytest.approx(TS[0] + TS[1] / 1e6, abs=1e-6)


def test_pcapng_two_interfaces_with_enhanced_and_simple_blocks(tmp_path: Path) -> None:
    path = write_pcapng(tmp_path / "x.pcapng", [FRAME, FRAME, FRAME])
    packets, names, _ = packets_and_queries(path)
    tshark = subprocess.run(["tshark", "-r", str(path)], capture_output=True, text=True)
    assert packets == 4 == len(tshark.stdout.splitlines())
    assert names == ["bad.malhost.example"] * 4


def test_pcapng_interfaces_of_different_link_types(tmp_path: Path) -> None:
    """libpcap refuses these; tshark reads them, and so do we, filter included."""
    path = write_pcapng(tmp_path / "x.pcapng", [FRAME] * 5, linktypes=(1, 101))
    packets, names, stamps = packets_and_queries(path)
    tshark = subprocess.run(["tshark", "-r", str(path), "-Y", "dns", "-T", "fields", "-e",
                             "dns.qry.name"], capture_output=True, text=True)
    assert packets == 6 and names == tshark.stdout.split() == ["bad.malhost.example"] * 6
    assert stamps[1] == pytest.approx(TS[0] + 1 + TS[1] / 1e6, abs=1e-6)
    assert run_pipeline([path], bpf_filter="udp dst port 53").pipeline.stats.packets == 6
    assert run_pipeline([path], bpf_filter="tcp").pipeline.stats.packets == 0
    path.write_bytes(path.read_bytes()[:-30])            # cut inside the last block
    capture = CaptureFile(path)
    assert sum(len(records) // 16 for _, records, _ in capture.batches()) == 5
    assert "cut short" in capture.warning


def test_gzip_compressed_capture(tmp_path: Path) -> None:
    plain = write_pcap(tmp_path / "x.pcap", [FRAME] * 3)
    packed = tmp_path / "x.pcap.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    assert packets_and_queries(packed)[:2] == packets_and_queries(plain)[:2]


def test_truncated_last_record_keeps_everything_before(tmp_path: Path) -> None:
    path = write_pcap(tmp_path / "x.pcap", [FRAME] * 5000)
    path.write_bytes(path.read_bytes()[:-10])
    capture = CaptureFile(path)
    packets = sum(len(records) // 16 for _, records, _ in capture.batches())
    assert packets == 4999
    assert "truncated" in capture.warning


def test_unknown_link_type_and_non_capture_are_errors(tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match="unsupported link type 147"):
        CaptureFile(write_pcap(tmp_path / "user.pcap", [FRAME], linktype=147))
    text = tmp_path / "notes.pcap"
    text.write_text("not a capture\n")
    with pytest.raises(CaptureError, match="not a capture file"):
        CaptureFile(text)


def test_several_files_a_bad_one_is_reported_and_skipped(tmp_path: Path) -> None:
    bad = tmp_path / "notes.pcap"
    bad.write_text("not a capture\n")
    truncated = write_pcap(tmp_path / "cut.pcap", [FRAME] * 3)
    truncated.write_bytes(truncated.read_bytes()[:-5])
    result = subprocess.run([sys.executable, "-m", "sensor", "replay", str(bad), str(truncated),
                             str(PCAPS / "gateway-sll.pcap")], capture_output=True, text=True)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("madoc-sensor:")]
    assert errors[0] == f"madoc-sensor: {bad}: not a capture file (unknown file format)"
    assert errors[1].startswith(f"madoc-sensor: warning: {truncated}: truncated dump file")
    assert "files: 3  packets: 45 " in result.stderr       # 2 before the cut + 43 in the SLL file


def test_missing_file_is_an_error() -> None:
    result = subprocess.run([sys.executable, "-m", "sensor", "replay", "/nonexistent.pcap"],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert "/nonexistent.pcap: cannot read: No such file or directory" in result.stderr

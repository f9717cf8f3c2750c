"""The pipeline's Ethernet/IPv4 fast path gives exactly what the general decoders give."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.all import DNS, DNSQR, DNSRR, IP, TCP, UDP, Ether, raw

from sensor.core.decode.link import ethernet
from sensor.core.pipeline import FRAME_RECORD, Pipeline
from sensor.sources.pcapfile import CaptureFile
from tests.conftest import PCAPS, examples


def general_ethernet(buf: bytes, off: int, end: int):
    """The same decoder under another name: the pipeline then skips its fast path."""
    return ethernet(buf, off, end)


def outcome(frames: list[bytes], link) -> tuple:
    pipeline = Pipeline()
    for i, frame in enumerate(frames):
        pipeline.feed(1.0 + i, frame, link)
    pipeline.finish()
    return pipeline.events, dict(pipeline.malformed), dict(pipeline.skipped), pipeline.stats


SEEDS = [raw(Ether() / IP(src="10.0.0.1", dst="203.0.113.5") / TCP(sport=1, dport=443,
                                                                     flags="S")),
         raw(Ether() / IP(src="10.0.0.1", dst="10.0.0.53") / UDP(sport=999, dport=53)
             / DNS(rd=1, qd=[DNSQR(qname="a.example")])),
         raw(Ether() / IP(src="10.0.0.53", dst="10.0.0.1") / UDP(sport=53, dport=999)
             / DNS(qr=1, qd=[DNSQR(qname="a.example")], an=[DNSRR(rrname="a.example")])),
         raw(Ether() / IP(src="10.0.0.1", dst="10.0.0.53") / TCP(sport=5, dport=53, flags="PA")
             / (b"\x00\x0c" + bytes(12)))]


@settings(max_examples=examples(3000), deadline=None)
@given(st.lists(st.tuples(st.sampled_from(SEEDS), st.lists(st.tuples(st.integers(0, 80),
                                                                     st.integers(0, 255)),
                                                           max_size=4),
                          st.integers(0, 120)), min_size=1, max_size=4))
def test_fast_path_equals_general_path(mutations) -> None:
    frames = []
    for seed, changes, cut in mutations:
        frame = bytearray(seed)
        for position, value in changes:
            if position < len(frame):
                frame[position] = value
        frames.append(bytes(frame[:max(cut, 14)]))
    assert outcome(frames, ethernet) == outcome(frames, general_ethernet)


def test_demo_capture_same_through_both_paths() -> None:
    capture = CaptureFile(PCAPS / "office.pcap")
    frames = []
    for data, records, _ in capture.batches():
        for index in range(0, len(records), 16):
            _, _, off, caplen = FRAME_RECORD.unpack_from(records, index)
            frames.append(data[off:off + caplen])
    assert outcome(frames, ethernet) == outcome(frames, general_ethernet)

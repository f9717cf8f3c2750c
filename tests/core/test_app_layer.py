"""The names inside connections, as the live sensor gets them: the default kernel filter
keeps every packet a name is read from (ClientHellos, the segment finishing a long one,
HTTP request heads, QUIC Initials) and drops QUIC's short-header packets; and flows
waiting for the rest of a ClientHello or request head stay within their bounds, each
bound counted when it bites."""

from __future__ import annotations

from pathlib import Path

import pytest

from sensor.config import DEFAULT_FILTER
from sensor.core.app_layer import FINISHED, AppLayer
from sensor.core.events import Endpoints
from sensor.core.flows import Flow
from tests.conftest import PCAPS, run_pipeline

CAPTURES = sorted([*PCAPS.glob("tls/*.pcap"), *PCAPS.glob("http/*.pcap"),
                   *PCAPS.glob("quic/*.pcap")])


def names(path: Path, bpf_filter: str | None) -> tuple[list, list, list]:
    outcome = run_pipeline([path], bpf_filter=bpf_filter)
    return ([e.hello for e in outcome.tls], [e.request for e in outcome.http],
            [e.hello for e in outcome.quic])


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_the_default_filter_keeps_every_name(path: Path) -> None:
    assert names(path, DEFAULT_FILTER) == names(path, None) != ([], [], [])


def test_the_default_filter_drops_quics_short_headers() -> None:
    for path in PCAPS.glob("quic/*.pcap"):
        kept = run_pipeline([path], bpf_filter=DEFAULT_FILTER).pipeline.stats.packets
        long_headers = run_pipeline([path], bpf_filter="udp[8] & 0x80 != 0").pipeline.stats
        assert kept == long_headers.packets < run_pipeline([path]).pipeline.stats.packets


HELLO_START = b"\x16\x03\x01\x08\x00\x01\x00\x07\xfc" + bytes(500)    # a hello of 2 KiB


def waiting_flow(number: int) -> Flow:
    ep = Endpoints(6, bytes((10, 0, number >> 8 & 255, number & 255)), 40000, b"\xcb\0q\1", 443)
    return Flow(number, ep, ep, 0.0, ())


def test_waiting_flows_are_bounded_in_number_and_bytes() -> None:
    app = AppLayer(max_flows=100, max_bytes=30_000, wait_seconds=30.0)
    problems: list[str] = []
    flows = [waiting_flow(n) for n in range(200)]
    for n, flow in enumerate(flows):
        app.tcp(1.0 + n * 0.001, flow, 1, HELLO_START, 0, len(HELLO_START), problems)
        assert len(app.waiting) <= 100 and app.waiting_bytes <= 30_000
    assert len(app.waiting) == 30_000 // len(HELLO_START)
    assert problems == ["app.waiting_limit"] * (200 - len(app.waiting))
    assert flows[0].app is FINISHED and flows[-1].app is not FINISHED


def test_a_wait_ends_after_its_time() -> None:
    app = AppLayer(wait_seconds=30.0)
    problems: list[str] = []
    first, second = waiting_flow(1), waiting_flow(2)
    app.tcp(100.0, first, 1, HELLO_START, 0, len(HELLO_START), problems)
    app.tcp(131.0, second, 1, HELLO_START, 0, len(HELLO_START), problems)
    assert problems == ["app.wait_timeout"] and list(app.waiting) == [2]
    assert first.app is FINISHED and app.waiting_bytes == len(HELLO_START)


def test_a_flow_that_is_neither_is_read_no_further() -> None:
    app, flow, problems = AppLayer(), waiting_flow(1), []
    assert app.tcp(1.0, flow, 1, b"SSH-2.0-OpenSSH_9.2\r\n", 0, 21, problems) == []
    assert flow.app is FINISHED and not app.waiting and not problems

"""Golden tests: our DNS, flow and names-inside-connections events against tshark's
reading of the same capture.

Every capture in pcaps/ (tunnels, TLS, QUIC, HTTP and encrypted DNS included) and
tests/captures/ (others' real captures) is read by both.
Where we disagree on purpose (a malformed packet tshark reads leniently, or a link
type tshark decodes and we do not), the packet and the reason are listed in
KNOWN_DIFFERENCES; anything else fails.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sensor.core.decode.dns import RRTYPE_A, RRTYPE_AAAA, RRTYPE_CNAME
from sensor.core.events import addr_text
from tests.conftest import PCAPS, demo_captures, real_captures, run_pipeline, tunnel_captures
from tests.tshark_oracle import canonical, dns_messages, flow_tuples, tshark
from tests.url_oracle import normalised

# (capture, the item only one side has) → why we differ from tshark on that packet.
KNOWN_DIFFERENCES: dict[tuple[str, tuple], str] = {
    ("office.pcap", ("192.168.10.30", "<name contains a pointer that loops>", 1)):
        "planted malformed query whose name points at itself: we count dns.pointer_loop "
        "and drop the message; tshark keeps the question with a placeholder name",
    ("udp-length-heapoverflow.pcap", (17, "48.48.48.48", 12336, "48.48.48.48", 12336)):
        "only 4 of the 8 UDP header bytes were captured: we count udp.truncated; "
        "tshark still shows the two ports it could read",
    **{("too-deep.pcap", item): "five tunnels deep: past the four the sensor follows, it "
       "counts tunnel.too_deep and drops the packet; tshark reads on"
       for item in [("192.168.20.10", "malhost.example", 1),
                    ("192.168.20.10", "malhost.example", 1, "198.51.100.99"),
                    (17, "192.168.20.1", 53, "192.168.20.10", 40001),
                    (6, "192.168.20.10", 40002, "198.51.100.99", 443)]},
}
# tshark's options for a capture it cannot read right from the bytes alone.
DECODE_AS = {"mpls-pw.pcap": ("-d", "mpls.label==200,pwethcw"),   # a pseudowire's payload
             "dot-doh-doq.pcap": ("-d", "udp.port==853,quic")}    # DNS over QUIC


def _captures() -> list[Path]:
    return (demo_captures() + tunnel_captures()
            + sorted(path for folder in ("tls", "http", "quic", "encrypted-dns")
                     for path in (PCAPS / folder).glob("*.pcap"))
            + real_captures())


def _ours(path: Path):
    outcome = run_pipeline([path])
    queries, answers, flows = set(), set(), set()
    for event in outcome.dns:
        message = event.message
        client = event.endpoints.dst if message.is_response else event.endpoints.src
        for question in message.questions:
            if not message.is_response:
                queries.add((addr_text(client), question.name, question.rrtype))
        for answer in message.answers:
            if answer.rrtype in (RRTYPE_A, RRTYPE_AAAA, RRTYPE_CNAME):
                answers.add((addr_text(client), answer.name, answer.rrtype, answer.data))
    for flow in outcome.flows:
        ep = flow.endpoints
        flows.add(canonical(ep.proto, addr_text(ep.src), ep.sport, addr_text(ep.dst), ep.dport))
    return queries, answers, flows


def _theirs(path: Path):
    queries, answers = set(), set()
    decode_as = DECODE_AS.get(path.name, ())
    for message in dns_messages(path, decode_as):
        if not message["response"]:
            for name, rrtype in message["questions"]:
                queries.add((message["client"], name, rrtype))
        for name, rrtype, data in message["answers"]:
            if rrtype in (RRTYPE_A, RRTYPE_AAAA, RRTYPE_CNAME):
                answers.add((message["client"], name, rrtype, data))
    return queries, answers, flow_tuples(path, decode_as)


@pytest.mark.parametrize("path", _captures(), ids=lambda p: p.name)
def test_same_dns_and_flows_as_tshark(path: Path) -> None:
    ours, theirs = _ours(path), _theirs(path)
    for what, mine, read in zip(("queries", "answers", "flows"), ours, theirs, strict=True):
        unexplained = {item for item in mine ^ read
                       if (path.name, item) not in KNOWN_DIFFERENCES}
        assert not unexplained, (f"{path.name} {what}: only ours {sorted(mine - read)[:5]}, "
                                 f"only tshark's {sorted(read - mine)[:5]}")


def _names_of_tshark(path: Path) -> tuple[list, list]:
    """(client, server name) of each ClientHello, TLS or QUIC, and (client, host, URL) of
    each HTTP request, as tshark reads them."""
    decode_as = DECODE_AS.get(path.name, ())
    hellos = [tuple(line.split("\t")) for line in tshark(
        path, *decode_as, "-Y", "tls.handshake.type == 1", "-T", "fields", "-e", "ip.src",
        "-e", "tls.handshake.extensions_server_name").splitlines()]
    requests = []
    for line in tshark(path, *decode_as, "-Y", "http.request", "-T", "fields", "-e", "ip.src",
                       "-e", "http.request.method", "-e", "http.host",
                       "-e", "http.request.full_uri").splitlines():
        client, method, host, uri = line.split("\t")
        # tshark keeps the Host header's port and the URI as sent; ours are
        # normalised, so tshark's is too, by yarl (tests/url_oracle.py).
        requests.append((client, host.rpartition(":")[0] if ":" in host else host,
                         "" if method == "CONNECT" else normalised(uri)))
    return sorted(hellos), sorted(requests)


@pytest.mark.parametrize("path", _captures(), ids=lambda p: p.name)
def test_same_server_names_and_http_hosts_as_tshark(path: Path) -> None:
    outcome = run_pipeline([path])
    hellos = sorted((addr_text(e.endpoints.src), e.hello.sni)
                    for e in [*outcome.tls, *outcome.quic])
    requests = sorted((addr_text(e.endpoints.src), e.request.host, e.request.url)
                      for e in outcome.http)
    assert (hellos, requests) == _names_of_tshark(path)

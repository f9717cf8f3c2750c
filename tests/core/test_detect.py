"""The detector, one event at a time: what each match point reports, who the host is,
and what is remembered of answers for listed names (docs/rules.md's match points)."""

from __future__ import annotations

from ipaddress import ip_address
from pathlib import Path

import pytest

from sensor.blocklist.loader import load_blocklist
from sensor.core.detect import MIN_TTL, Detector, ResolvedNames, internal_networks
from sensor.core.events import (
    ClientHello,
    DnsAnswer,
    DnsMessage,
    DnsQuestion,
    Endpoints,
    HttpRequest,
    Indicator,
)

HOST, OTHER_HOST = "192.168.1.10", "10.0.0.7"
RESOLVER, REMOTE = "8.8.8.8", "198.51.100.1"
LISTED_IP, LISTED_NET = "203.0.113.9", "2001:db8:bad::/48"
RESPONSE = 0x8180


def packed(text: str) -> bytes:
    return ip_address(text).packed


def ep(src: str, dst: str, dport: int = 443, proto: int = 6, sport: int = 40000) -> Endpoints:
    return Endpoints(proto, packed(src), sport, packed(dst), dport)


def answer(name: str, rrtype: int, data: str, ttl: int = 300) -> DnsAnswer:
    addr = packed(data) if rrtype in (1, 28) else b""
    return DnsAnswer(name, rrtype, ttl, data, addr)


def response(question: str, *answers: DnsAnswer) -> DnsMessage:
    return DnsMessage(1, RESPONSE, (DnsQuestion(question, 1),), answers)


def query(*names: str) -> DnsMessage:
    return DnsMessage(1, 0x0100, tuple(DnsQuestion(name, 1) for name in names), ())


def hello(sni: str = "", ja3_hash: str = "", ja4: str = "") -> ClientHello:
    return ClientHello(sni, 0x0304, (), "", ja3_hash, ja4)


def request(host: str, url: str) -> HttpRequest:
    return HttpRequest("GET", host, 80, "/", "", "HTTP/1.1", url)


JA3 = "e7d705a3286e19ea42f587b344ee6865"
JA4 = "t13d1516h2_8daaf6152771_e5627efa2ab1"


@pytest.fixture(scope="module")
def detector_lists(tmp_path_factory: pytest.TempPathFactory):
    folder: Path = tmp_path_factory.mktemp("lists")
    (folder / "d.txt").write_text("evil.example\nc2.example\n")
    (folder / "i.txt").write_text(f"{LISTED_IP}\n{LISTED_NET}\n")
    (folder / "u.txt").write_text("http://files.example/kit.exe\n")
    (folder / "ja3.csv").write_text(f"ja3_md5,Firstseen,Lastseen,Listingreason\n"
                                    f"{JA3},2022-01-01,2022-02-01,TestBot\n")
    (folder / "ja4.txt").write_text(f"{JA4} TestBot loader\n")
    (folder / "doh.txt").write_text("doh.resolver.example\n9.9.9.9\n")
    (folder / "rules.yaml").write_text(
        "sources:\n"
        "  - {name: d, path: d.txt, format: domains}\n"
        "  - {name: i, path: i.txt, format: ips}\n"
        "  - {name: u, path: u.txt, format: mixed}\n"
        "  - {name: ja3, path: ja3.csv, format: sslbl-ja3}\n"
        "  - {name: ja4, path: ja4.txt, format: ja4}\n"
        "doh_resolvers:\n  - {name: doh, path: doh.txt, format: mixed}\n")
    return load_blocklist([folder / "rules.yaml"])[0]


@pytest.fixture()
def detector(detector_lists) -> Detector:
    return Detector(detector_lists, internal_networks())


def summary(hits) -> list[tuple]:
    """(match, indicator, seen, resolved from, host, outbound) of each hit."""
    return [(h.match, h.indicator.value, h.seen, h.resolved_from, str(ip_address(h.host)),
             h.outbound) for h in hits]


def test_a_query_for_a_listed_name_or_below_it_is_a_hit_on_the_asking_host(
        detector: Detector) -> None:
    hits = detector.dns(1.0, 7, ep(HOST, RESOLVER, 53, 17), query("www.evil.example",
                                                                   "fine.example"), (5,))
    assert summary(hits) == [("dns.query", "evil.example", "www.evil.example", "", HOST, True)]
    assert (hits[0].flow_id, hits[0].ts, hits[0].vlan) == (7, 1.0, (5,))
    assert hits[0].dns is not None and hits[0].dns.questions[0].name == "www.evil.example"
    assert detector.dns(1.0, 7, ep(HOST, RESOLVER, 53, 17), query("fine.example"), ()) == []


def test_a_response_is_the_asking_hosts_and_its_listed_question_alone_is_no_hit(
        detector: Detector) -> None:
    """The query already counted the question; the response's hits are its answers."""
    message = response("evil.example", answer("evil.example", 1, REMOTE))
    assert detector.dns(1.0, 1, ep(RESOLVER, HOST, 40000, 17, 53), message, ()) == []
    listed = response("x.example", answer("x.example", 1, LISTED_IP))
    hits = detector.dns(1.0, 1, ep(RESOLVER, HOST, 40000, 17, 53), listed, ())
    assert summary(hits) == [("dns.answer", LISTED_IP, LISTED_IP, "", HOST, True)]


def test_an_answer_for_a_listed_name_makes_a_connection_to_its_address_a_hit(
        detector: Detector) -> None:
    detector.dns(100.0, 1, ep(RESOLVER, HOST, 40000, 17, 53),
                 response("evil.example", answer("evil.example", 1, REMOTE, ttl=600)), ())
    hits = detector.flow_start(650.0, 2, ep(HOST, REMOTE), (3,))
    assert summary(hits) == [("flow.dest_ip", "evil.example", REMOTE, "evil.example", HOST,
                              True)]
    assert hits[0].vlan == (3,)
    assert detector.flow_start(701.0, 3, ep(HOST, REMOTE), ()) == []       # TTL passed
    assert detector.flow_start(650.0, 4, ep(HOST, "198.51.100.2"), ()) == []


def test_a_short_ttl_is_kept_for_a_minute(detector: Detector) -> None:
    detector.dns(100.0, 1, ep(RESOLVER, HOST, 40000, 17, 53),
                 response("evil.example", answer("evil.example", 1, REMOTE, ttl=0)), ())
    assert detector.flow_start(100.0 + MIN_TTL, 2, ep(HOST, REMOTE), ())
    assert detector.flow_start(100.0 + MIN_TTL + 1, 3, ep(HOST, REMOTE), ()) == []


def test_a_cname_chain_carries_the_listed_name_to_the_address(detector: Detector) -> None:
    """Listed question → unlisted CNAME → address: the address is the listed name's; an
    unlisted question → listed CNAME target → address: the target's, and a hit."""
    client = ep(RESOLVER, HOST, 40000, 17, 53)
    first = response("evil.example", answer("evil.example", 5, "cdn.fine.example"),
                     answer("cdn.fine.example", 1, REMOTE))
    assert detector.dns(1.0, 1, client, first, ()) == []
    second = response("www.fine.example", answer("www.fine.example", 5, "a.c2.example"),
                      answer("a.c2.example", 5, "edge.fine.example"),
                      answer("edge.fine.example", 28, "2001:db8::5"))
    hits = detector.dns(1.0, 1, client, second, ())
    assert summary(hits) == [("dns.cname", "c2.example", "a.c2.example", "", HOST, True)]
    assert summary(detector.flow_start(2.0, 2, ep(HOST, REMOTE), ())) == [
        ("flow.dest_ip", "evil.example", REMOTE, "evil.example", HOST, True)]
    assert summary(detector.flow_start(2.0, 3, ep(HOST, "2001:db8::5"), ())) == [
        ("flow.dest_ip", "c2.example", "2001:db8::5", "a.c2.example", HOST, True)]
    unrelated = response("other.example", answer("other.example", 1, "198.51.100.3"))
    detector.dns(1.0, 1, client, unrelated, ())
    assert detector.flow_start(2.0, 4, ep(HOST, "198.51.100.3"), ()) == []


def test_a_listed_answer_for_a_listed_name_says_where_it_came_from(detector: Detector) -> None:
    message = response("evil.example", answer("evil.example", 1, LISTED_IP))
    hits = detector.dns(1.0, 1, ep(RESOLVER, HOST, 40000, 17, 53), message, ())
    assert summary(hits) == [("dns.answer", LISTED_IP, LISTED_IP, "evil.example", HOST, True)]
    assert summary(detector.flow_start(2.0, 2, ep(HOST, LISTED_IP), ())) == [
        ("flow.dest_ip", LISTED_IP, LISTED_IP, "evil.example", HOST, True)]


def test_flows_to_and_from_listed_addresses(detector: Detector) -> None:
    assert summary(detector.flow_start(1.0, 1, ep(HOST, "2001:db8:bad::1"), ())) == [
        ("flow.dest_ip", LISTED_NET, "2001:db8:bad::1", "", HOST, True)]
    inbound = detector.flow_start(1.0, 2, ep(LISTED_IP, HOST, 22), ())
    assert summary(inbound) == [("flow.src_ip", LISTED_IP, LISTED_IP, "", HOST, False)]
    assert detector.flow_start(1.0, 3, ep(HOST, REMOTE), ()) == []
    assert detector.flow_start(1.0, 4, ep(REMOTE, HOST), ()) == []


def test_the_host_is_the_internal_side(detector: Detector) -> None:
    """The client, unless only the server is internal: two internal hosts, or two
    outside ones (a transit flow on a mirror port), give the client."""
    assert summary(detector.flow_start(1.0, 1, ep("8.8.4.4", LISTED_IP), ()))[0][4:] == (
        "8.8.4.4", True)
    assert summary(detector.flow_start(1.0, 2, ep(OTHER_HOST, LISTED_IP), ()))[0][4:] == (
        OTHER_HOST, True)
    message = query("evil.example")
    assert summary(detector.dns(1.0, 3, ep(REMOTE, HOST, 53, 17), message, ()))[0][4:] == (
        HOST, False)
    assert summary(detector.dns(1.0, 4, ep(HOST, OTHER_HOST, 53, 17), message, ()))[0][4:] == (
        HOST, True)


@pytest.mark.parametrize("point", ["tls.sni", "quic.sni"])
def test_a_listed_server_name_or_fingerprint_in_a_client_hello(detector: Detector,
                                                               point: str) -> None:
    listed = hello("login.c2.example", JA3, JA4)
    hits = detector.client_hello(1.0, 1, ep(HOST, REMOTE), listed, (9,), point)
    assert summary(hits) == [(point, "c2.example", "login.c2.example", "", HOST, True),
                             ("tls.ja3", JA3, JA3, "", HOST, True),
                             ("tls.ja4", JA4, JA4, "", HOST, True)]
    assert all(h.tls is listed and h.http is None and h.vlan == (9,) for h in hits)
    assert detector.client_hello(1.0, 1, ep(HOST, REMOTE), hello("fine.example", "0" * 32,
                                                                 "t13d"), ()) == []
    assert detector.client_hello(1.0, 1, ep(HOST, REMOTE), hello(), ()) == []


def test_a_listed_host_or_url_in_an_http_request(detector: Detector) -> None:
    both = request("evil.example", "http://evil.example/x")
    assert summary(detector.http_request(1.0, 1, ep(HOST, REMOTE, 80), both, ())) == [
        ("http.host", "evil.example", "evil.example", "", HOST, True)]
    kit = request("files.example", "http://files.example/kit.exe")
    hits = detector.http_request(1.0, 1, ep(HOST, REMOTE, 80), kit, ())
    assert summary(hits) == [("http.url", "http://files.example/kit.exe",
                              "http://files.example/kit.exe", "", HOST, True)]
    assert hits[0].http is kit and hits[0].tls is None
    other = request("files.example", "http://files.example/other.exe")
    assert detector.http_request(1.0, 1, ep(HOST, REMOTE, 80), other, ()) == []


@pytest.mark.parametrize(("endpoints", "sni", "kind", "server"), [
    (ep(HOST, REMOTE, 853), None, "dot", REMOTE),
    (ep(HOST, REMOTE, 853, 17), None, "doq", REMOTE),
    (ep(HOST, "9.9.9.9", 443), None, "doh", "9.9.9.9"),
    (ep(HOST, REMOTE, 443), "doh.resolver.example", "doh", "doh.resolver.example"),
    (ep(HOST, REMOTE, 443), None, None, None),          # an unlisted address on 443
    (ep(HOST, REMOTE, 443), "fine.example", None, None),
    (ep(HOST, "9.9.9.9", 443), "doh.resolver.example", None, None),  # counted at the start
    (ep(HOST, REMOTE, 853), "x.example", None, None),   # a hello on 853: counted at the start
    (ep(HOST, REMOTE, 8443), None, None, None),
    (ep(REMOTE, "9.9.9.9", 853), None, None, None),     # not our client
    (ep(HOST, OTHER_HOST, 853), None, None, None),      # an internal resolver
])
def test_encrypted_dns_is_an_internal_clients_flow_to_an_outside_resolver(
        detector: Detector, endpoints: Endpoints, sni: str | None, kind: str | None,
        server: str | None) -> None:
    found = detector.encrypted_dns(1.0, 5, endpoints, None if sni is None else hello(sni))
    if kind is None:
        assert found is None
    else:
        assert found is not None
        assert (found.kind, found.server, found.flow_id, found.host) == (
            kind, server, 5, endpoints.src)


def test_remembered_answers_are_bounded_oldest_out() -> None:
    names = ResolvedNames(capacity=2)
    indicator = Indicator("evil.example", "domain", ("d",), "", 1)
    for n in range(3):
        names.remember(bytes([n]), f"n{n}.example", indicator, 10.0)
    assert names.lookup(b"\x00", 0.0) is None and len(names) == 2
    names.remember(b"\x01", "again.example", indicator, 10.0)     # refreshed: now newest
    names.remember(b"\x03", "n3.example", indicator, 10.0)
    assert names.lookup(b"\x02", 0.0) is None
    assert names.lookup(b"\x01", 10.0) == ("again.example", indicator)
    assert names.lookup(b"\x01", 10.5) is None and len(names) == 1

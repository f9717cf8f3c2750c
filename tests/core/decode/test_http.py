"""HTTP/1.x requests from real clients (pcaps/http/, curl over keep-alive and through a
proxy, made by pcaps/capture_apps.py): host and full URL are what tshark reads; a listed
Host is an `http.host` hit and a listed URL an `http.url` hit, while the URL's host alone
is not; EVE has Suricata's `http` event; no bytes raise and a flow's reading stays within
its bounds."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sensor.core.decode.http1 import (
    MAX_HEAD,
    MAX_REQUESTS,
    HttpRequests,
    http_request,
    normalise_url,
    starts_request,
)
from sensor.core.events import HttpRequest, addr_text
from tests.conftest import PCAPS, ROOT, RULES, examples, run_pipeline
from tests.tshark_oracle import tshark
from tests.url_oracle import normalised

CAPTURES = sorted((PCAPS / "http").glob("*.pcap"))


def requests_of_tshark(path: Path) -> list[tuple[str, str, str, str]]:
    out = tshark(path, "-Y", "http.request", "-T", "fields", "-e", "ip.src",
                 "-e", "http.request.method", "-e", "http.host", "-e", "http.request.full_uri")
    rows = []
    for line in out.splitlines():
        source, method, host, uri = line.split("\t")
        # tshark's host keeps the port, and its URI is as sent: ours are normalised,
        # so tshark's is too, by yarl (tests/url_oracle.py).
        rows.append((source, method, host.rpartition(":")[0] if ":" in host else host,
                     "" if method == "CONNECT" else normalised(uri)))
    return rows


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_host_and_url_are_tsharks(path: Path) -> None:
    ours = [(addr_text(e.endpoints.src), e.request.method, e.request.host, e.request.url)
            for e in run_pipeline([path]).http]
    assert ours and ours == requests_of_tshark(path)


def test_every_keepalive_request_is_read_past_a_body() -> None:
    [get, post, last] = [e.request for e in run_pipeline([PCAPS / "http" / "keepalive.pcap"]).http]
    assert (get.method, get.target, get.user_agent, get.protocol, get.port) == (
        "GET", "/dl/payload.exe?id=7", "madoc-test/1.0", "HTTP/1.1", 8080)
    assert post.method == "POST" and post.url == "http://files.example:8080/gate.php"
    assert last.target == "/%7Euser/index.html"                     # as sent …
    assert last.url == "http://files.example:8080/~user/index.html"  # … and normalised


@pytest.mark.parametrize(("text", "normal"), [
    ("HTTP://Files.EXAMPLE:80/a/%7euser/x%2fy?Q=1#frag", "http://files.example/a/~user/x%2Fy?Q=1"),
    ("https://github.com:443", "https://github.com/"),
    ("http://u:p@evil.example:8080/dl", "http://evil.example:8080/dl"),
    ("http://[2001:DB8::1]/x", "http://[2001:db8::1]/x"),
    ("http://bücher.example/", "http://xn--bcher-kva.example/"),
    ("http://Evil.Example.:8080/a", "http://evil.example:8080/a"),    # the root's dot
    # RFC 3986 §6.2.2.1, §6.2.2.2 and §6.2.3's examples
    ("HTTP://www.EXAMPLE.com/", "http://www.example.com/"),
    ("http://example.com/%7Efoo", "http://example.com/~foo"),
    ("http://example.com/%41%62%2d%2e%5f", "http://example.com/Ab-._"),
    ("http://example.com/a%c2%b1b", "http://example.com/a%C2%B1b"),
    ("http://example.com", "http://example.com/"),
    ("http://example.com:/", "http://example.com/"),
    ("http://example.com:80/", "http://example.com/"),
    # §5.2.4's examples of dot-segments removed
    ("http://h.example/a/b/c/./../../g", "http://h.example/a/g"),
    ("http://a/mid/content=5/../6", "http://a/mid/6"),
    ("http://a/b/..", "http://a/"),
])
def test_urls_are_normalised(text: str, normal: str) -> None:
    assert normalise_url(text) == normal


_UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
# Escaped: unreserved characters (decoded) and ones both keep escaped (yarl decodes some
# reserved ones, such as ":" in a path or "/" in a query, which RFC 3986 leaves as they are).
def _text(kept_escaped: str) -> st.SearchStrategy[str]:
    escape = st.sampled_from(sorted(set(_UNRESERVED) | set(kept_escaped))).flatmap(
        lambda c: st.sampled_from([f"%{ord(c):02x}", f"%{ord(c):02X}"]))
    return st.lists(st.one_of(st.sampled_from(_UNRESERVED), escape), max_size=8).map("".join)


_segment, _query = _text("/?#% \"\x7f\xb1"), _text("#% \"\x7f\xb1")


@settings(max_examples=examples(300), deadline=None)
@given(scheme=st.sampled_from(["http", "HTTP", "https", "Https"]),
       host=st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,10}(\.[A-Za-z]{2,6}){1,2}", fullmatch=True),
       port=st.one_of(st.none(), st.sampled_from([80, 443, 8080, 1])),
       path=st.lists(_segment, max_size=4).map("/".join),
       query=st.one_of(st.none(), _query), fragment=st.one_of(st.none(), _segment))
def test_normalising_agrees_with_yarl(scheme: str, host: str, port: int | None, path: str,
                                      query: str | None, fragment: str | None) -> None:
    text = (f"{scheme}://{host}{'' if port is None else f':{port}'}"
            f"{'/' + path if path else ''}{'' if query is None else '?' + query}"
            f"{'' if fragment is None else '#' + fragment}")
    assert normalise_url(text) == normalised(text)


@pytest.mark.parametrize("text", ["ftp://evil.example/x", "http:///nohost", "evil.example/x",
                                  "http://evil.example:99999/"])
def test_what_is_no_http_url_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        normalise_url(text)


def test_listed_host_and_url_are_hits_and_a_shared_host_is_not(tmp_path: Path) -> None:
    """A URL indicator on shared hosting alerts on that URL only, not the host."""
    (tmp_path / "urls.txt").write_text(
        "http://files.example:8080/dl/payload.exe?id=7\n"
        "http://files.example:8080/gate*\n"
        "https://files.example:8080/index.html\n")
    (tmp_path / "rules.yaml").write_text(
        f"sources:\n  - {{name: urls, path: urls.txt}}\n"
        f"  - {{name: domains, path: {ROOT / 'rules' / 'lists' / 'ncsc-2022-domains.txt'}}}\n")
    outcome = run_pipeline(CAPTURES, [tmp_path / "rules.yaml"])
    assert sorted((h.match, h.seen, h.indicator.value) for h in outcome.hits) == [
        ("http.host", "c2-panel.example", "c2-panel.example"),
        ("http.host", "malhost.example", "malhost.example"),
        ("http.url", "http://files.example:8080/dl/payload.exe?id=7",
         "http://files.example:8080/dl/payload.exe?id=7"),
        ("http.url", "http://files.example:8080/gate.php", "http://files.example:8080/gate*"),
        ("tls.sni", "c2-panel.example", "c2-panel.example")]


def test_eve_has_suricatas_http_event(tmp_path: Path) -> None:
    eve = tmp_path / "eve.json"
    run = [sys.executable, "-m", "sensor", "replay", "--rules", str(RULES), "--eve", str(eve),
           *map(str, CAPTURES)]
    assert subprocess.run(run, capture_output=True, cwd=ROOT).returncode == 0
    events = [json.loads(line) for line in eve.read_text().splitlines()]
    http = [e["http"] for e in events if e["event_type"] == "http"]
    assert http[0] == {"hostname": "files.example", "http_port": 8080, "http_method": "GET",
                       "url": "/dl/payload.exe?id=7", "http_user_agent": "madoc-test/1.0",
                       "protocol": "HTTP/1.1"}
    assert [h["http_method"] for h in http] == ["GET", "POST", "GET", "CONNECT", "GET"]
    alerts = [e for e in events if e["event_type"] == "alert" and "http" in e]
    assert {(a["alert"]["signature_id"], a["http"]["hostname"]) for a in alerts} == {
        (9_000_008, "c2-panel.example"), (9_000_008, "malhost.example")}


def test_a_flow_stops_at_its_request_limit() -> None:
    request = b"GET /x HTTP/1.1\r\nHost: a.example\r\n\r\n"
    stream = HttpRequests()
    data = request * (MAX_REQUESTS + 5)
    found, stop = stream.feed(0, data, 0, len(data))
    assert len(found) == MAX_REQUESTS and stop == "http.request_limit"


def test_a_head_past_its_bound_is_refused() -> None:
    head = b"GET / HTTP/1.1\r\nX: " + b"a" * MAX_HEAD
    assert http_request(head, 0, len(head)) == "http.head_too_long"
    stream = HttpRequests()
    found, stop = stream.feed(0, head[:1000], 0, 1000)
    assert not found and not stop and len(stream.data) == 1000


@settings(max_examples=examples(2000), deadline=None)
@given(st.binary(max_size=400))
def test_no_bytes_raise(data: bytes) -> None:
    for head in (b"GET ", b"CONNECT ", b"POST http://"):
        result = http_request(head + data, 0, len(head) + len(data))
        assert isinstance(result, str | tuple)
        if isinstance(result, tuple):
            assert isinstance(result[0], HttpRequest) and result[1] > 0


@settings(max_examples=examples(300), deadline=None)
@given(st.lists(st.integers(1, 80), max_size=8), st.integers(0, 30))
def test_any_segmenting_gives_the_same_requests(cuts: list[int], body: int) -> None:
    """Requests with bodies, cut anywhere into segments, read as when whole."""
    one = (b"POST /p HTTP/1.1\r\nHost: h.example\r\nContent-Length: " + str(body).encode()
           + b"\r\n\r\n" + b"b" * body + b"GET /q HTTP/1.1\r\nHost: h.example\r\n\r\n")
    whole, _ = HttpRequests().feed(0, one, 0, len(one))
    stream, got, at = HttpRequests(), [], 0
    for size in [*cuts, len(one)]:
        end = min(len(one), at + size)
        found, stop = stream.feed(at, one, at, end)
        got += found
        assert not stop and len(stream.data) <= MAX_HEAD
        at = end
        if at == len(one):
            break
    assert [r.url for r in got] == [r.url for r in whole] == [
        "http://h.example/p", "http://h.example/q"]


def head(request_line: str, *headers: str) -> bytes:
    return ("\r\n".join((request_line, *headers)) + "\r\n\r\n").encode("latin-1")


@pytest.mark.parametrize(("wire", "read"), [
    # (method, host, port, target, user agent, protocol, url), head length, body length
    (head("GET /a HTTP/1.1", "Host: Evil.Example.:8080", "User-Agent: x\x01\\y z"),
     (("GET", "evil.example", 8080, "/a", "x\\x01\\x5cy z", "HTTP/1.1",
       "http://evil.example:8080/a"), 0, 0)),
    (head("POST /up HTTP/1.0", "host: [2001:DB8::1]:81", "Content-Length: 12"),
     (("POST", "2001:db8::1", 81, "/up", "", "HTTP/1.0", "http://[2001:db8::1]:81/up"), 0, 12)),
    (head("GET / HTTP/1.1", "Host: [2001:db8::2]"),
     (("GET", "2001:db8::2", 0, "/", "", "HTTP/1.1", "http://[2001:db8::2]/"), 0, 0)),
    (head("GET / HTTP/1.1", "Host: a.example:123456"),
     (("GET", "a.example", 0, "/", "", "HTTP/1.1", ""), 0, 0)),
    (head("GET / HTTP/1.1", "Host: a.example:99999"),
     (("GET", "a.example", 99999, "/", "", "HTTP/1.1", ""), 0, 0)),
    (head("GET / HTTP/1.1", "Host: a:b:c"),
     (("GET", "a:b:c", 0, "/", "", "HTTP/1.1", ""), 0, 0)),
    (head("GET / HTTP/1.1", "Host: a.example:"),
     (("GET", "a.example", 0, "/", "", "HTTP/1.1", "http://a.example/"), 0, 0)),
    (head("PUT /x HTTP/1.1", "Host: a.example", "Transfer-Encoding: gzip, Chunked"),
     (("PUT", "a.example", 0, "/x", "", "HTTP/1.1", "http://a.example/x"), 0, -1)),
    (head("PUT /x HTTP/1.1", "Host: a.example", "Transfer-Encoding: gzip",
          "X-Chunked: chunked"),
     (("PUT", "a.example", 0, "/x", "", "HTTP/1.1", "http://a.example/x"), 0, 0)),
    (head("GET http://Proxy.Example:3128/p?q HTTP/1.1", "Host: other.example"),
     (("GET", "proxy.example", 3128, "http://Proxy.Example:3128/p?q", "", "HTTP/1.1",
       "http://proxy.example:3128/p?q"), 0, 0)),
    (head("GET http://a.example/ HTTP/1.1"),
     (("GET", "a.example", 0, "http://a.example/", "", "HTTP/1.1", "http://a.example/"), 0, 0)),
    (head("GET ftp://a.example/ HTTP/1.1"),
     (("GET", "", 0, "ftp://a.example/", "", "HTTP/1.1", ""), 0, 0)),
    (head("GET /a/b/c/d/e/x://y HTTP/1.1", "Host: a.example"),
     (("GET", "a.example", 0, "/a/b/c/d/e/x://y", "", "HTTP/1.1",
       "http://a.example/a/b/c/d/e/x://y"), 0, 0)),
    (head("CONNECT files.example:443 HTTP/1.1", "Host: files.example:443"),
     (("CONNECT", "files.example", 443, "files.example:443", "", "HTTP/1.1", ""), 0, 0)),
    (head("GET / HTTP/1.1", "Host: " + "a" * 300),
     (("GET", "a" * 255, 0, "/", "", "HTTP/1.1", f"http://{'a' * 255}/"), 0, 0)),
    (head("GET / HTTP/1.1", "Content-Length: " + "9" * 15),
     (("GET", "", 0, "/", "", "HTTP/1.1", ""), 0, 10**15 - 1)),
])
def test_a_request_head_reads_as_sent(wire: bytes, read: tuple) -> None:
    got = http_request(b"xx" + wire + b"GET", 2, len(wire) + 2)
    fields, _, length = read
    assert got == (HttpRequest(*fields), len(wire), length)


@pytest.mark.parametrize(("wire", "reason"), [
    (b"GET / HTTP/1.1\r\nHost: a.example\r\n", "http.partial"),
    (b"GET / HTTP/1.1\r\nX: " + b"a" * MAX_HEAD, "http.head_too_long"),
    (b"\r\n\r\n", "http.bad_request_line"),
    (head("GET /  HTTP/1.1"), "http.bad_request_line"),
    (head("FETCH / HTTP/1.1"), "http.bad_request_line"),
    (head("GET / HTTP/2.0"), "http.bad_request_line"),
    (head("GET / HTTP/1.1", "Host a.example"), "http.bad_header"),
    (head("GET / HTTP/1.1", "Content-Length: 12a"), "http.bad_content_length"),
    (head("GET / HTTP/1.1", "Content-Length: -1"), "http.bad_content_length"),
    (head("GET / HTTP/1.1", "Content-Length: " + "9" * 16), "http.bad_content_length"),
])
def test_a_head_that_cannot_be_read_says_why(wire: bytes, reason: str) -> None:
    assert http_request(wire, 0, len(wire)) == reason


def test_a_head_exactly_the_limit_long_is_too_long_and_one_less_is_partial() -> None:
    wire = b"GET / HTTP/1.1\r\nX: " + b"a" * MAX_HEAD
    assert http_request(wire, 0, MAX_HEAD) == "http.head_too_long"
    assert http_request(wire, 0, MAX_HEAD - 1) == "http.partial"
    assert http_request(b"zz" + wire, 2, MAX_HEAD + 1) == "http.partial"


@pytest.mark.parametrize(("wire", "starts"), [
    (b"GET / HTTP/1.1", True), (b"OPTIONS * HTTP/1.1", True), (b"CONNECT a:443", True),
    (b" GET /", False), (b"GETX /", False), (b"get / HTTP/1.1", False),
    (b"PROPFIND /", False), (b"GE", False),
])
def test_what_starts_a_request(wire: bytes, starts: bool) -> None:
    assert starts_request(b"--" + wire + b" tail", 2, len(wire) + 2) is starts


def test_a_keep_alive_stream_in_pieces_skips_bodies_and_stops_where_it_must() -> None:
    first = head("POST /a HTTP/1.1", "Host: a.example", "Content-Length: 5") + b"hello"
    second = head("GET /b HTTP/1.1", "Host: a.example")
    stream = first + second
    reader = HttpRequests()
    got: list[str] = []
    for at in range(0, len(stream), 7):                 # 7-byte segments, in order
        requests, stop = reader.feed(1000 + at, stream, at, min(at + 7, len(stream)))
        assert stop == ""
        got += [r.target for r in requests]
    assert got == ["/a", "/b"]
    assert reader.feed(1000 + len(stream) + 50, b"GET", 0, 3) == ([], "http.gap")
    chunked = HttpRequests()
    body = head("POST /c HTTP/1.1", "Transfer-Encoding: chunked") + b"5\r\nhello\r\n"
    requests, stop = chunked.feed(0, body, 0, len(body))
    assert [r.target for r in requests] == ["/c"] and stop == "http.chunked_body"
    tunnel = HttpRequests()
    connect = head("CONNECT a.example:443 HTTP/1.1") + b"\x16\x03\x01"
    requests, stop = tunnel.feed(0, connect, 0, len(connect))
    assert [r.method for r in requests] == ["CONNECT"] and stop == "http.connect"
    broken = HttpRequests()
    assert broken.feed(0, b"BAD\r\n\r\n", 0, 7) == ([], "http.bad_request_line")

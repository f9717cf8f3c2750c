"""Remote sources against a real aiohttp HTTPS server on loopback."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

from sensor.blocklist.loader import load_blocklist
from sensor.blocklist.remote import FetchError, fetch

FEED = "c2-remote.example\n203.0.113.90\n"


@dataclass
class FeedServer:
    """A feed on https://127.0.0.1:PORT/feed.txt whose behaviour a test can change."""

    body: str = FEED
    etag: str = '"v1"'
    mode: str = "ok"                      # ok | error | slow | huge
    requests: list[dict] = field(default_factory=list)
    port: int = 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(dict(request.headers))
        if self.mode == "error":
            return web.Response(status=503)
        if self.mode == "slow":
            await asyncio.sleep(5)
        if self.mode == "huge":
            return web.Response(body=b"x.example\n" * 200_000)
        if request.headers.get("If-None-Match") == self.etag:
            return web.Response(status=304)
        return web.Response(text=self.body, headers={"ETag": self.etag})


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True)
    return cert, key


@pytest.fixture()
def server(certificate: tuple[Path, Path]) -> Iterator[FeedServer]:
    feed = FeedServer()
    loop = asyncio.new_event_loop()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*map(str, certificate))
    app = web.Application()
    app.router.add_get("/feed.txt", feed.handle)
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    loop.run_until_complete(site.start())
    feed.port = site._server.sockets[0].getsockname()[1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield feed
    loop.call_soon_threadsafe(loop.stop)
    thread.join()
    loop.run_until_complete(runner.cleanup())
    loop.close()


def url(feed: FeedServer) -> str:
    return f"https://127.0.0.1:{feed.port}/feed.txt"


def test_fetch_then_not_modified_via_etag(server: FeedServer, certificate, tmp_path: Path) -> None:
    cert, _ = certificate
    first = fetch(url(server), tmp_path, ca_file=str(cert))
    assert (first.text, first.from_cache) == (FEED, False)
    second = fetch(url(server), tmp_path, ca_file=str(cert))
    assert (second.text, second.from_cache, second.warning) == (FEED, True, "")
    assert server.requests[1]["If-None-Match"] == '"v1"'
    server.body, server.etag = FEED + "new.example\n", '"v2"'
    assert fetch(url(server), tmp_path, ca_file=str(cert)).text.endswith("new.example\n")


def test_server_down_or_failing_uses_the_last_good_copy(server: FeedServer, certificate,
                                                        tmp_path: Path) -> None:
    cert, _ = certificate
    fetch(url(server), tmp_path, ca_file=str(cert))
    server.mode = "error"
    failed = fetch(url(server), tmp_path, ca_file=str(cert))
    assert failed.text == FEED and "HTTP 503" in failed.warning
    server.mode = "slow"
    slow = fetch(url(server), tmp_path, timeout=0.5, ca_file=str(cert))
    assert slow.text == FEED and "no answer within 0.5 s" in slow.warning
    server.mode = "huge"
    huge = fetch(url(server), tmp_path, max_bytes=100_000, ca_file=str(cert))
    assert huge.text == FEED and "cap" in huge.warning


def test_nothing_cached_and_server_down_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FetchError, match="no cached copy yet"):
        fetch("https://127.0.0.1:9/feed.txt", tmp_path, timeout=2)


def test_certificate_is_verified(server: FeedServer, tmp_path: Path) -> None:
    with pytest.raises(FetchError, match="CERTIFICATE_VERIFY_FAILED|certificate"):
        fetch(url(server), tmp_path)             # self-signed, no ca_file: refused


def test_plain_http_needs_insecure(tmp_path: Path) -> None:
    with pytest.raises(FetchError, match="plain http:// is refused"):
        fetch("http://127.0.0.1:9/feed.txt", tmp_path)


def test_remote_source_in_rules_yaml_loads_and_survives_a_restart_offline(
        server: FeedServer, certificate, tmp_path: Path) -> None:
    cert, _ = certificate
    rules = tmp_path / "rules.yaml"
    rules.write_text(f"sources:\n  - {{name: remote, url: '{url(server)}', format: auto, "
                     f"ca_file: '{cert}'}}\n")
    cache = tmp_path / "cache"
    blocklist, report = load_blocklist([rules], cache)
    assert blocklist.match_domain("x.c2-remote.example").sources == ("remote",)
    assert report.sources[0].by_kind == {"domain": 1, "ip": 1} and not report.warnings
    server.mode = "error"
    blocklist, report = load_blocklist([rules], cache)
    assert blocklist.match_domain("c2-remote.example") is not None
    assert "using the cached copy" in report.warnings[0]


def test_a_relative_ca_file_is_read_beside_the_rules_file(
        server: FeedServer, certificate, tmp_path: Path) -> None:
    """As a source's path is: under systemd the working directory is /, not /etc/madoc."""
    cert, _ = certificate
    (tmp_path / "feeds").mkdir()
    shutil.copy(cert, tmp_path / "feeds" / "cert-ca.pem")
    rules = tmp_path / "rules.yaml"
    rules.write_text(f"sources:\n  - {{name: remote, url: '{url(server)}', format: auto, "
                     f"ca_file: feeds/cert-ca.pem}}\n")
    blocklist, report = load_blocklist([rules], tmp_path / "cache")
    assert not report.warnings, report.warnings
    assert blocklist.match_domain("x.c2-remote.example").sources == ("remote",)

#!/usr/bin/env python3
"""Record pcaps/{tls,http,quic}/*.pcap: real clients and servers talking between two
network namespaces made for the purpose, tcpdump on the server's end. Needs root;
every address and name is made up inside the namespaces, and a throwaway self-signed
certificate serves TLS and QUIC.

- tls/: openssl s_client against openssl s_server: TLS 1.3 and 1.2 naming a listed
  server, one naming none, and one whose ClientHello (a long ALPN list) spans two TCP
  segments (segmentation offload is turned off so the wire carries real segments).
- http/: curl over HTTP/1.1 keep-alive (GET, POST with a body, GET) to a small server,
  and curl through a small proxy: CONNECT to the TLS server, and an absolute-form GET.
- quic/: aioquic's client and server, QUIC version 1 and version 2; the version 2
  ClientHello is large enough to span two Initial packets, as Chrome's does.
- encrypted-dns/: what a computer resolving over encrypted DNS sends: TLS to port 853
  (DNS over TLS), TLS to 443 naming a public DoH resolver, QUIC to UDP 853 (DNS over
  QUIC); servers are the same openssl and aioquic ones, on those ports.

Run: sudo .venv/bin/python pcaps/capture_apps.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.daemon.netns import Wire  # noqa: E402

PYTHON = sys.executable
CLIENT, SERVER = "10.77.0.10", "10.77.0.1"
LONG_ALPN = [f"madoc-{i}-" + "x" * 180 for i in range(10)]      # ~1.9 KB of ALPN
TLS_CAPTURES = {   # file → s_client options
    "tls13-openssl.pcap": ["-tls1_3", "-servername", "malhost.example", "-alpn", "h2,http/1.1"],
    "tls12-openssl.pcap": ["-tls1_2", "-servername", "c2-panel.example", "-alpn", "http/1.1"],
    "tls13-no-sni.pcap": ["-tls1_3", "-noservername"],
    "tls13-two-segments.pcap": ["-tls1_3", "-servername", "malhost.example", "-alpn",
                                ",".join(LONG_ALPN)],
}
HTTP_SERVER = f"""
import http.server
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def answer(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Length", "3")
        self.end_headers()
        self.wfile.write(b"ok\\n")
    do_GET = do_POST = answer
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("{SERVER}", 8080), Handler).serve_forever()
"""
PROXY = f"""
import asyncio
async def pipe(reader, writer):
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()
async def client(reader, writer):
    head = await reader.readuntil(b"\\r\\n\\r\\n")
    connect = head.startswith(b"CONNECT ")
    up_reader, up_writer = await asyncio.open_connection("{SERVER}", 443 if connect else 8080)
    if connect:
        writer.write(b"HTTP/1.1 200 Connection established\\r\\n\\r\\n")
    else:
        up_writer.write(head)
    await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
async def main():
    server = await asyncio.start_server(client, "{SERVER}", 3128)
    await server.serve_forever()
asyncio.run(main())
"""
HTTP_CAPTURES = {   # file → curl runs
    "keepalive.pcap": [[
        "--resolve", f"malhost.example:8080:{SERVER}", "--resolve", f"files.example:8080:{SERVER}",
        "-A", "madoc-test/1.0", "http://files.example:8080/dl/payload.exe?id=7",
        "--next", "--resolve", f"files.example:8080:{SERVER}", "-A", "madoc-test/1.0",
        "--data", "report=1&host=pc-07", "http://files.example:8080/gate.php",
        "--next", "--resolve", f"files.example:8080:{SERVER}", "-A", "madoc-test/1.0",
        "http://files.example:8080/%7Euser/index.html#top"]],
    "proxy.pcap": [["--http1.1", "-k", "-p", "-x", f"http://{SERVER}:3128", "https://c2-panel.example/"],
                   ["-x", f"http://{SERVER}:3128", "-A", "madoc-test/1.0",
                    "http://malhost.example:8080/update.bin"]],
}
QUIC_SERVER = f"""
import asyncio, sys
from aioquic.asyncio import serve
from aioquic.quic.configuration import QuicConfiguration
config = QuicConfiguration(is_client=False, alpn_protocols=sys.argv[3].split(","))
config.load_cert_chain(sys.argv[1], sys.argv[2])
async def main():
    await serve("{SERVER}", int(sys.argv[4]), configuration=config)
    await asyncio.Future()
asyncio.run(main())
"""
QUIC_CLIENT = f"""
import asyncio, ssl, sys
from aioquic.asyncio import connect
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.packet import QuicProtocolVersion
config = QuicConfiguration(is_client=True, alpn_protocols=sys.argv[3].split(","),
                           server_name=sys.argv[1], verify_mode=ssl.CERT_NONE,
                           supported_versions=[QuicProtocolVersion[sys.argv[2]]])
async def main():
    async with connect("{SERVER}", int(sys.argv[4]), configuration=config) as client:
        await client.ping()
asyncio.run(main())
"""
QUIC_CAPTURES = {   # file → (server name, version, ALPN)
    "quic-v1.pcap": ("malhost.example", "VERSION_1", "h3"),
    "quic-v2-two-initials.pcap": ("c2-panel.example", "VERSION_2", ",".join(["h3", *LONG_ALPN])),
}


def record(wire: Wire, path: Path, bpf: str, action: Callable[[], None]) -> None:
    """Capture on the server's end while `action` runs."""
    tcpdump = subprocess.Popen(["ip", "netns", "exec", wire.b, "tcpdump", "-i", wire.end_b,
                                "-w", str(path), "-U", "--immediate-mode", bpf],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert tcpdump.stderr is not None and "listening" in tcpdump.stderr.readline()
    action()
    time.sleep(0.3)
    tcpdump.terminate()
    tcpdump.wait(10)
    print(f"{path.relative_to(ROOT)}: {path.stat().st_size} bytes")


def in_client(wire: Wire, *command: str) -> None:
    subprocess.run(["ip", "netns", "exec", wire.a, *command], input="", capture_output=True,
                   timeout=20)


def server(wire: Wire, *command: str) -> subprocess.Popen:
    return subprocess.Popen(["ip", "netns", "exec", wire.b, *command], stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def encrypted_dns(wire: Wire) -> None:
    """DNS over TLS, over HTTPS to a public resolver's name, and over QUIC."""
    in_client(wire, "openssl", "s_client", "-connect", f"{SERVER}:853", "-servername",
              "dns.quad9.net", "-alpn", "dot")
    in_client(wire, "openssl", "s_client", "-connect", f"{SERVER}:443", "-servername",
              "cloudflare-dns.com", "-alpn", "h2")
    in_client(wire, PYTHON, "-c", QUIC_CLIENT, "dns.adguard-dns.com", "VERSION_1", "doq", "853")


def no_offload(wire: Wire) -> None:
    """Real segments on the wire: no TSO/GSO/GRO on either end, and a 1500-byte MTU."""
    for ns, end in ((wire.a, wire.end_a), (wire.b, wire.end_b)):
        subprocess.run(["ip", "-n", ns, "link", "set", end, "mtu", "1500"], check=True)
        subprocess.run(["ip", "netns", "exec", ns, PYTHON, "-c", f"""
from pyroute2.ethtool import Ethtool
ethtool = Ethtool()
features = ethtool.get_features("{end}")
for name in ("tx-generic-segmentation", "tx-tcp-segmentation", "rx-gro"):
    features.features[name].enable = False
ethtool.set_features("{end}", features)
"""], check=True)


def main() -> None:
    with tempfile.TemporaryDirectory() as name, Wire() as wire:
        key, cert = Path(name) / "key.pem", Path(name) / "cert.pem"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj",
                        "/CN=madoc-test", "-keyout", str(key), "-out", str(cert)],
                       check=True, capture_output=True)
        for ns, end, address in ((wire.a, wire.end_a, CLIENT), (wire.b, wire.end_b, SERVER)):
            subprocess.run(["ip", "-n", ns, "addr", "add", f"{address}/24", "dev", end],
                           check=True)
        no_offload(wire)
        servers = [
            server(wire, "openssl", "s_server", "-accept", "443", "-key", str(key), "-cert",
                   str(cert), "-alpn", "h2,http/1.1", "-www"),
            server(wire, PYTHON, "-c", HTTP_SERVER),
            server(wire, PYTHON, "-c", PROXY),
            server(wire, PYTHON, "-c", QUIC_SERVER, str(cert), str(key),
                   ",".join(["h3", *LONG_ALPN]), "443"),
            server(wire, "openssl", "s_server", "-accept", "853", "-key", str(key), "-cert",
                   str(cert), "-alpn", "dot"),
            server(wire, PYTHON, "-c", QUIC_SERVER, str(cert), str(key), "doq", "853"),
        ]
        time.sleep(1.0)
        try:
            for directory in ("tls", "http", "quic"):
                (ROOT / "pcaps" / directory).mkdir(exist_ok=True)
            for file, options in TLS_CAPTURES.items():
                record(wire, ROOT / "pcaps" / "tls" / file, "tcp port 443",
                       lambda options=options: in_client(
                           wire, "openssl", "s_client", "-connect", f"{SERVER}:443", *options))
            for file, runs in HTTP_CAPTURES.items():
                record(wire, ROOT / "pcaps" / "http" / file, "tcp", lambda runs=runs: [
                    in_client(wire, "curl", "-s", "-o", "/dev/null", *run) for run in runs])
            for file, (sni, version, alpn) in QUIC_CAPTURES.items():
                record(wire, ROOT / "pcaps" / "quic" / file, "udp port 443",
                       lambda sni=sni, version=version, alpn=alpn: in_client(
                           wire, PYTHON, "-c", QUIC_CLIENT, sni, version, alpn, "443"))
            (ROOT / "pcaps" / "encrypted-dns").mkdir(exist_ok=True)
            record(wire, ROOT / "pcaps" / "encrypted-dns" / "dot-doh-doq.pcap",
                   "port 853 or port 443",
                   lambda: encrypted_dns(wire))
        finally:
            for process in servers:
                process.terminate()
                process.wait(10)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Record pcaps/tls/*.pcap: real TLS handshakes between two network namespaces made for
the purpose (openssl s_client against openssl s_server with a throwaway self-signed
certificate), tcpdump on the server's end: TLS 1.3 and TLS 1.2 ClientHellos naming a
listed server (SNI) with ALPN, and one naming none. Needs root; every address is made
up inside the namespaces.

Run: sudo .venv/bin/python pcaps/capture_tls.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.daemon.netns import Wire  # noqa: E402

CLIENT, SERVER = "10.77.0.10", "10.77.0.1"
CAPTURES = {   # file → s_client options
    "tls13-openssl.pcap": ["-tls1_3", "-servername", "malhost.example", "-alpn", "h2,http/1.1"],
    "tls12-openssl.pcap": ["-tls1_2", "-servername", "c2-panel.example", "-alpn", "http/1.1"],
    "tls13-no-sni.pcap": ["-tls1_3", "-noservername"],
}


def main() -> None:
    out = ROOT / "pcaps" / "tls"
    out.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as name, Wire() as wire:
        key, cert = Path(name) / "key.pem", Path(name) / "cert.pem"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj",
                        "/CN=madoc-test", "-keyout", str(key), "-out", str(cert)],
                       check=True, capture_output=True)
        for ns, end, address in ((wire.a, wire.end_a, CLIENT), (wire.b, wire.end_b, SERVER)):
            subprocess.run(["ip", "-n", ns, "addr", "add", f"{address}/24", "dev", end],
                           check=True)
        server = subprocess.Popen(["ip", "netns", "exec", wire.b, "openssl", "s_server",
                                   "-accept", "4433", "-key", str(key), "-cert", str(cert),
                                   "-alpn", "h2,http/1.1", "-naccept", str(len(CAPTURES))],
                                  stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)   # it quits when stdin closes
        time.sleep(0.5)
        for file, options in CAPTURES.items():
            tcpdump = subprocess.Popen(["ip", "netns", "exec", wire.b, "tcpdump", "-i",
                                        wire.end_b, "-w", str(out / file), "-U",
                                        "--immediate-mode", "tcp"],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                       text=True)
            assert tcpdump.stderr is not None and "listening" in tcpdump.stderr.readline()
            subprocess.run(["ip", "netns", "exec", wire.a, "openssl", "s_client", "-connect",
                            f"{SERVER}:4433", *options], input="", capture_output=True,
                           timeout=20)
            time.sleep(0.3)
            tcpdump.terminate()
            tcpdump.wait(10)
            print(f"pcaps/tls/{file}: {(out / file).stat().st_size} bytes")
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()

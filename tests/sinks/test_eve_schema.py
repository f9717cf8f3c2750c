"""Every EVE line the sensor writes for the bundled captures fits Suricata 8's layout
(`eve_layout.py`), the `madoc` object aside: alerts of every match point, DNS, flows,
TLS, QUIC and HTTP events, inside VLANs and tunnels."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import pytest
from jsonschema import Draft202012Validator

from tests.conftest import PCAPS, ROOT, RULES
from tests.sinks.eve_layout import EVE_SCHEMA

VALIDATOR = Draft202012Validator(EVE_SCHEMA)
MATCH_POINTS = {"dns.query", "dns.answer", "flow.dest_ip", "tls.sni", "quic.sni", "http.host",
                "http.url", "tls.ja3", "tls.ja4"}


def layout_errors(event: dict) -> list[str]:
    event = {key: value for key, value in event.items() if key != "madoc"}
    return [f"{'.'.join(map(str, error.absolute_path)) or '(top)'}: {error.message}"
            for error in VALIDATOR.iter_errors(event)]


@pytest.fixture(scope="module")
def events(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    """The EVE lines of every bundled capture, with the project's rules and lists that
    name a URL prefix, a JA3 hash and a JA4 fingerprint seen in them."""
    tmp = tmp_path_factory.mktemp("eve-schema")
    (tmp / "urls.csv").write_text("url,comment\nhttp://files.example:8080/dl/*,loader\n")
    (tmp / "ja3.csv").write_text("# ja3_md5,Firstseen,Lastseen,Listingreason\n"
                                 "22558766122974704364c9c75c5cce0a,2026-11-02 10:00:00,"
                                 "2026-11-30 10:00:00,TestBot\n")
    (tmp / "ja4.txt").write_text("t13i040900_16476d049b0b_78f1d400d464 no-SNI client\n")
    (tmp / "rules.yaml").write_text("sources:\n  - {name: urls, path: urls.csv, format: csv}\n"
                                    "  - {name: sslbl, path: ja3.csv}\n"
                                    "  - {name: ja4s, path: ja4.txt}\n")
    captures = sorted(p for p in PCAPS.rglob("*") if p.suffix in (".pcap", ".pcapng"))
    eve = tmp / "eve.json"
    run = subprocess.run([sys.executable, "-m", "sensor", "replay", "--rules", str(RULES),
                          "--rules", str(tmp / "rules.yaml"), "--eve", str(eve),
                          *map(str, captures)], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    return [json.loads(line) for line in eve.read_text().splitlines()]


def test_the_captures_give_every_event_type_and_match_point(events: list[dict]) -> None:
    types = Counter(e["event_type"] for e in events)
    assert set(types) == {"alert", "dns", "flow", "tls", "quic", "http"}
    assert {e["madoc"]["match"] for e in events if e["event_type"] == "alert"} >= MATCH_POINTS
    assert any("vlan" in e for e in events) and any("tunnel" in e for e in events)
    assert any("extensions" in e.get("quic", {}) for e in events)


def test_every_event_fits_suricatas_layout(events: list[dict]) -> None:
    failures = Counter(error for event in events for error in layout_errors(event))
    assert not failures, failures.most_common(10)


def test_the_layout_rejects_what_suricata_does_not_know(events: list[dict]) -> None:
    quic = next(e for e in events if e["event_type"] == "quic")
    assert layout_errors({**quic, "quic": {**quic["quic"], "client_alpns": ["h3"]}})
    dns = next(e for e in events if e["event_type"] == "dns")
    assert layout_errors({**dns, "dns": {**dns["dns"], "id": "7"}})
    assert layout_errors({**dns, "timestamp": "2026-12-05 08:00:00"})
    alert = next(e for e in events if e["event_type"] == "alert")
    assert not layout_errors(alert)                 # madoc's own object is left aside
    metadata = alert["alert"]["metadata"]
    assert layout_errors({**alert, "alert": {**alert["alert"],
                                             "metadata": {**metadata, "match": "tls.sni"}}})

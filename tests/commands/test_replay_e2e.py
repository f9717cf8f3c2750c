"""`madoc-sensor replay` end to end: the demo captures in, exactly the planted hits out."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

from tests.conftest import PCAPS, RULES, demo_captures


def replay(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sensor", "replay", *args],
                          capture_output=True, text=True, cwd=cwd, check=False)


def planted() -> Counter:
    expected = json.loads((PCAPS / "expected-hits.json").read_text())
    return Counter((hit["host"], hit["indicator"], hit["match"], hit.get("resolved_from", ""))
                   for hits in expected.values() for hit in hits)


def test_replay_finds_exactly_the_planted_hits(tmp_path: Path) -> None:
    eve = tmp_path / "eve.json"
    result = replay("--rules", str(RULES), "--eve", str(eve), *map(str, demo_captures()))
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in eve.read_text().splitlines()]
    alerts = [e for e in events if e["event_type"] == "alert"]
    found = Counter((a["madoc"]["host"], a["madoc"]["indicator"], a["madoc"]["match"],
                     a["madoc"].get("resolved_from", "")) for a in alerts)
    assert found == planted()


def test_alert_fields_follow_eve_and_reference(tmp_path: Path) -> None:
    eve = tmp_path / "eve.json"
    replay("--rules", str(RULES), "--eve", str(eve), str(PCAPS / "office.pcap"))
    events = [json.loads(line) for line in eve.read_text().splitlines()]
    by_type = Counter(e["event_type"] for e in events)
    assert set(by_type) == {"dns", "flow", "alert"}
    flow_ids = {e["flow_id"] for e in events if e["event_type"] == "flow"}
    for alert in (e for e in events if e["event_type"] == "alert"):
        assert alert["flow_id"] in flow_ids            # alerts share the flow's id
        assert {"timestamp", "src_ip", "src_port", "dest_ip", "dest_port", "proto"} <= set(alert)
        meta = alert["alert"]["metadata"]
        assert set(meta) == {"campaign", "source", "list", "indicator", "match"}
        assert set(alert["madoc"]) >= {"indicator", "indicator_type", "match", "host", "sources",
                                       "campaign"}
        assert alert["alert"]["severity"] in (1, 2, 3)
    flows = [e for e in events if e["event_type"] == "flow"]
    assert {f["flow"]["reason"] for f in flows} <= {"timeout", "forced", "shutdown"}
    assert {f["madoc"]["end_reason"] for f in flows} == {"fin", "idle_timeout", "end_of_input"}
    assert {f["flow"]["state"] for f in flows} == {"new", "established", "closed"}
    query = next(e for e in events if e["event_type"] == "dns" and e["dns"]["type"] == "request")
    assert query["dns"]["version"] == 3 and query["dns"]["queries"][0]["rrtype"] == "A"
    assert query["timestamp"][-5] in "+-" and len(query["timestamp"].split(".")[1]) == 11


def test_summary_counts_and_host_table() -> None:
    result = replay("--rules", str(RULES), *map(str, demo_captures()))
    assert result.returncode == 0
    lines = result.stderr.splitlines()
    assert any(line.startswith("malformed: 4 (") for line in lines), result.stderr
    header = next(line for line in lines if line.startswith("host"))
    table = lines[lines.index(header) + 1:]
    hosts = [row.split()[0] for row in table]
    assert hosts == ["192.168.10.37", "192.168.10.23", "fd00:10::45"]   # most hits first
    assert "192.168.10.5" not in hosts          # scanned by a listed address: not infected


def test_no_dns_and_no_flows_leave_only_alerts(tmp_path: Path) -> None:
    eve = tmp_path / "eve.json"
    replay("--no-dns", "--no-flows", "--eve", str(eve), str(PCAPS / "gateway-sll.pcap"))
    types = {json.loads(line)["event_type"] for line in eve.read_text().splitlines()}
    assert types == {"alert"}


def test_eve_to_stdout_and_single_list_file_rules() -> None:
    result = replay("--rules", str(RULES.parent / "lists" / "ncsc-2022-ips.txt"), "--eve", "-",
                    "--no-dns", "--no-flows", str(PCAPS / "office.pcap"))
    alerts = [json.loads(line) for line in result.stdout.splitlines()]
    assert {a["madoc"]["indicator"] for a in alerts} == {"203.0.113.77", "203.0.113.9",
                                                          "2001:db8:bad::/48"}


def test_filter_is_applied_before_decoding() -> None:
    """Only packets the filter passes are counted: as many as tcpdump's libpcap passes."""
    expression = "udp port 53 and host 192.168.10.23"
    result = replay("--filter", expression, str(PCAPS / "office.pcap"))
    assert result.returncode == 0
    packets = int(result.stderr.split("packets: ")[1].split()[0].replace(",", ""))
    tcpdump = subprocess.run(["tcpdump", "-r", str(PCAPS / "office.pcap"), "-n", expression],
                             capture_output=True, text=True, check=True)
    assert packets == len(tcpdump.stdout.splitlines()) > 0
    assert "flows: " in result.stderr and "alerts: 3" in result.stderr


def test_bad_filter_is_a_one_line_error() -> None:
    result = replay("--filter", "port nonsense", str(PCAPS / "office.pcap"))
    assert result.returncode == 2
    assert "bad filter" in result.stderr and "office.pcap" in result.stderr

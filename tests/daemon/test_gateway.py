"""Gateway mode on a real router namespace: an office host looks up a listed name and
connects through the router, where the sensor takes DNS and the names inside connections
(here an HTTP request's Host) from capture and flows from the kernel's conntrack events,
each connection once, and the collector learns the host's MAC from the router's
neighbour table."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from tests.collector.harness import Collector
from tests.daemon.netns import Office, SensorProcess, inside, scrape_until

SERVERS = """
import socket, threading
from scapy.layers.dns import DNS, DNSRR

def dns():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("203.0.113.9", 53))
    while True:
        data, peer = s.recvfrom(512)
        query = DNS(data)
        answer = DNS(id=query.id, qr=1, aa=1, rd=query.rd, ra=1, qd=query.qd,
                     an=DNSRR(rrname=query.qd.qname, rdata="203.0.113.9", ttl=300))
        s.sendto(bytes(answer), peer)

def web():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("203.0.113.9", 8080))
    s.listen()
    while True:
        c, _ = s.accept()
        c.recv(1000)
        c.sendall(b"x" * 5000)
        c.close()

sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sink.bind(("203.0.113.77", 5000))
threading.Thread(target=dns, daemon=True).start()
threading.Thread(target=web, daemon=True).start()
print("ready", flush=True)
while True:
    sink.recv(100)
"""

CLIENT = """
import socket
from scapy.layers.dns import DNS, DNSQR
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.settimeout(5)
u.sendto(bytes(DNS(id=4242, rd=1, qd=DNSQR(qname="c2.evil.example"))), ("203.0.113.9", 53))
address = DNS(u.recv(512)).an.rdata
c = socket.create_connection((address, 8080), timeout=5)
c.sendall(b"GET /gate.php HTTP/1.0\\r\\nHost: c2.evil.example:8080\\r\\n\\r\\n")
received = 0
while chunk := c.recv(65536):
    received += len(chunk)
c.close()
u.sendto(b"beacon", ("203.0.113.77", 5000))
print(address, received)
"""


def records(eve: Path, kind: str) -> list[dict]:
    if not eve.exists():
        return []
    return [r for r in map(json.loads, eve.read_text().splitlines()) if r["event_type"] == kind]


def wait_until(condition: Callable[[], bool], what: str, sensor: SensorProcess,
               timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not seen in {timeout} s: {sensor.output[-3000:]}")
        time.sleep(0.2)


def write_rules(directory: Path) -> Path:
    (directory / "domains.txt").write_text("evil.example\n")
    (directory / "ips.txt").write_text(f"{Office.OTHER_SERVER}\n")
    rules = directory / "rules.yaml"
    rules.write_text("sources:\n  - {name: d, path: domains.txt, format: domains}\n"
                     "  - {name: i, path: ips.txt, format: ips}\n")
    return rules


def test_gateway_mode_flows_from_conntrack_and_macs_from_the_neighbour_table(
        tmp_path: Path) -> None:
    eve = tmp_path / "eve.json"
    with Office() as office:
        servers = office.start(office.wan, SERVERS)
        assert servers.stdout.readline().strip() == "ready"
        collector = Collector(tmp_path / "collector")
        token = tmp_path / "sensor.token"
        token.write_text(collector.sensor_token("gw1") + "\n")
        config = tmp_path / "sensor.yaml"
        config.write_text(
            f"sensor:\n  id: gw1\n  interfaces: [{Office.LAN_INTERFACE}]\n  mode: gateway\n"
            f"  user: root\n  internal_networks: [10.9.1.0/24]\n"
            f"rules: {write_rules(tmp_path)}\nrules_reload_seconds: 3600\neve: {eve}\n"
            f"state_dir: {tmp_path / 'state'}\n"
            f"collector: {{url: 'http://127.0.0.1:{collector.port}', token_file: {token}, "
            f"batch_seconds: 1, retry_max: 0.5}}\n")
        try:
            with inside(office.gw):
                collector.start()
                sensor = SensorProcess(office.gw, config)
                sensor.wait_for("READY=1")
                assert office.run(office.lan, CLIENT).split() == [Office.SERVER, "5000"]
                wait_until(lambda: len(records(eve, "alert")) >= 4, "four alerts", sensor)
                # The kernel ends the TCP connection: its DESTROY event ends the flow.
                subprocess.run(["ip", "netns", "exec", office.gw, "conntrack", "-D", "-p",
                                "tcp", "--dport", "8080"], check=True, capture_output=True)
                wait_until(lambda: any(f["dest_port"] == 8080 for f in records(eve, "flow")),
                           "the TCP flow's end", sensor)
                samples = scrape_until(office.gw, "http://127.0.0.1:9570/metrics", lambda got: (
                    got.get(("madoc_uplink_batches_total", (("result", "sent"),)), 0) >= 1
                    and got.get(("madoc_uplink_spool_batches", ()), 1) == 0
                    and got.get(("madoc_conntrack_events_total", ()), 0) >= 3))
                assert sensor.stop() == 0, sensor.output
                status, doc = collector.get("/api/v1/hosts", collector.admin_token)
        finally:
            collector.stop()
            servers.kill()
        mac = office.host_mac()
    log = sensor.output
    assert "gateway mode: flows from conntrack events, DNS and names inside connections " \
        "from capture" in log
    assert "running as root with CAP_NET_RAW CAP_NET_ADMIN" in log

    alerts = {(a["madoc"]["match"], a["madoc"]["seen"], a["madoc"].get("resolved_from"),
               a["src_ip"]) for a in records(eve, "alert")}
    assert alerts == {
        ("dns.query", "c2.evil.example", None, Office.HOST),
        ("flow.dest_ip", Office.SERVER, "c2.evil.example", Office.HOST),
        ("http.host", "c2.evil.example", None, Office.HOST),
        ("flow.dest_ip", Office.OTHER_SERVER, None, Office.HOST)}
    [request] = records(eve, "http")
    assert (request["http"]["hostname"], request["http"]["url"]) == ("c2.evil.example",
                                                                     "/gate.php")

    flows = {f["dest_port"]: f for f in records(eve, "flow")}
    web, beacon, dns = flows[8080], flows[5000], flows[53]
    assert web["madoc"]["end_reason"] == "conntrack" and web["flow"]["alerted"]
    # The request read from the captured packets joins the kernel's connection.
    assert request["flow_id"] == web["flow_id"]
    assert {a["flow_id"] for a in records(eve, "alert") if a["dest_port"] == 8080} == {
        web["flow_id"]}
    assert web["flow"]["state"] == "established"
    assert web["flow"]["bytes_toclient"] > 5000 and web["flow"]["pkts_toserver"] >= 3
    # Still open at SIGTERM: ended with the counts read from the kernel's table.
    assert beacon["madoc"]["end_reason"] == "end_of_input"
    assert (beacon["flow"]["pkts_toserver"], beacon["flow"]["bytes_toserver"]) == (1, 34)
    # DNS from the captured packets, once: conntrack's copy of it is left out.
    assert dns["madoc"]["end_reason"] != "conntrack"
    assert sum(f["dest_port"] == 53 for f in records(eve, "flow")) == 1
    assert sum(f["dest_port"] == 8080 for f in records(eve, "flow")) == 1  # conntrack's only
    assert all(f["src_ip"] != "127.0.0.1" for f in records(eve, "flow"))

    # The metrics a province watches: the uplink delivered, conntrack used, no spool left.
    assert samples["madoc_uplink_batches_total", (("result", "sent"),)] >= 1
    assert samples["madoc_uplink_spool_batches", ()] == 0
    assert samples["madoc_conntrack_events_total", ()] >= 3
    assert samples["madoc_sensor_info", (("mode", "gateway"), ("sensor", "gw1"))] == 1

    assert status == 200, doc
    hosts = {h["ip"]: h for h in doc["hosts"]}
    assert hosts[Office.HOST]["mac"] == mac
    assert hosts[Office.HOST]["hits"] == 4

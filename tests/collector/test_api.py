"""The collector's API on a real server: auth on every endpoint, validation, storage."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.collector.harness import Collector, http, post_gzip, self_signed
from tests.notify import NotifySocket

UNIT = "Sở Tài chính"
ENDPOINTS = [("POST", "/api/v1/events", "sensor"), ("GET", "/api/v1/identity", "any"),
             ("GET", "/api/v1/sensors", "admin"), ("GET", "/api/v1/hosts", "admin"),
             ("GET", "/api/v1/hosts/1", "admin"), ("POST", "/api/v1/hosts/1/handled", "admin"),
             ("GET", "/api/v1/indicators/top", "admin")]


def batch(sensor: str, sequence: int, hits: int = 3, host: str = "192.168.1.10",
          stream: str = "s1", hour: int = 1_662_940_800) -> dict[str, Any]:
    alert = {"ts": hour + 5.5, "host_ip": host, "host_mac": None, "indicator": "evil.example",
             "indicator_type": "domain", "match": "dns.query", "seen": "a.evil.example",
             "outbound": True, "sources": ["ncsc"], "campaign": "2022", "severity": 1,
             "proto": 17, "src_ip": host, "src_port": 40000, "dest_ip": "192.168.1.1",
             "dest_port": 53}
    return {"sensor": sensor, "stream": stream, "sequence": sequence, "alerts": [alert],
            "counts": [{"host_ip": host, "host_mac": None, "hour": hour,
                        "indicator": "evil.example", "indicator_type": "domain", "hits": hits,
                        "first": hour + 5.5, "last": hour + 60.0}],
            "hosts_seen": [{"host_ip": "192.168.1.99", "host_mac": "02:00:00:00:00:99",
                            "hour": hour, "first": hour + 1.0, "last": hour + 2.0}],
            "dropped_alerts": 0}


@pytest.mark.parametrize(("method", "path", "needs"), ENDPOINTS)
def test_every_endpoint_refuses_missing_wrong_and_revoked_tokens(
        collector: Collector, method: str, path: str, needs: str) -> None:
    token = collector.sensor_token("gw-revoked", UNIT)
    collector.cli("tokens", "revoke", "gw-revoked")
    body = batch("gw-revoked", 1) if method == "POST" else None
    for bad in (None, "madoc_not-a-real-token", token, "Basic dXNlcjpwYXNz"):
        headers = {"Authorization": bad} if bad and bad.startswith("Basic") else None
        status, doc = http(method, collector.url + path,
                           None if headers or bad is None else bad, body, headers=headers)
        assert status == 401, (bad, doc)
        assert doc["error"]


@pytest.mark.parametrize(("method", "path", "needs"), ENDPOINTS)
def test_every_endpoint_checks_the_kind_of_token(collector: Collector, method: str, path: str,
                                                 needs: str) -> None:
    sensor = collector.sensor_token("gw1", UNIT)
    wrong = {"sensor": collector.admin_token, "admin": sensor, "any": None}[needs]
    if wrong is None:
        return
    body = batch("gw1", 1) if method == "POST" else None
    status, doc = http(method, collector.url + path, wrong, body)
    assert status == 403, doc


def test_a_sensor_cannot_post_for_another_sensor(collector: Collector) -> None:
    token = collector.sensor_token("gw1", UNIT)
    collector.sensor_token("gw2", UNIT)
    status, doc = collector.post("/api/v1/events", token, batch("gw2", 1))
    assert status == 403 and "gw2" in doc["error"]


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda b: b.pop("stream"), "stream: missing"),
    (lambda b: b.update(sequence="7"), "sequence: expected an integer"),
    (lambda b: b.update(sequence=0), "sequence: must be 1 or more"),
    (lambda b: b["counts"][0].update(hits=-2), "counts[0].hits: must be 1 or more"),
    (lambda b: b["counts"][0].update(host_ip="not-an-ip"), "counts[0].host_ip: expected an IPv4"),
    (lambda b: b["alerts"][0].update(outbound="yes"), "alerts[0].outbound: expected true or false"),
    (lambda b: b["alerts"][0].update(sources="ncsc"), "alerts[0].sources: expected a list"),
    (lambda b: b["hosts_seen"][0].update(host_mac="02-00-00-00-00-99"), "hosts_seen[0].host_mac"),
    (lambda b: b.update(alerts={}), "alerts: expected a list"),
    (lambda b: b["alerts"][0].update(seen="x" * 5000), "alerts[0].seen: expected a string"),
])
def test_malformed_batches_get_a_400_that_names_the_field(collector: Collector, mutate,
                                                           message: str) -> None:
    token = collector.sensor_token("gw1", UNIT)
    body = batch("gw1", 1)
    mutate(body)
    status, doc = collector.post("/api/v1/events", token, body)
    assert status == 400 and message in doc["error"], doc


def test_bodies_that_are_not_json_or_too_big_are_refused(collector: Collector) -> None:
    token = collector.sensor_token("gw1", UNIT)
    status, doc = collector.post("/api/v1/events", token, raw=b'{"sensor": "gw1", ')
    assert status == 400 and "not JSON" in doc["error"]
    status, doc = collector.post("/api/v1/events", token, raw=b"[1, 2]")
    assert status == 400 and "expected an object" in doc["error"]
    huge = batch("gw1", 1)
    huge["alerts"] = huge["alerts"] * 4000        # about 1.6 MB > the harness's 1 MiB cap
    status, doc = collector.post("/api/v1/events", token, huge)
    assert status == 413 and "max_body_bytes" in doc["error"]
    bomb = gzip.compress(b" " * (64 << 20))       # 64 KiB on the wire, 64 MiB inflated
    status, doc = collector.post("/api/v1/events", token, raw=bomb,
                                 headers={"Content-Encoding": "gzip"})
    assert status == 413


def test_query_parameters_are_validated(collector: Collector) -> None:
    admin = collector.admin_token
    for path in ("/api/v1/hosts?status=sick", "/api/v1/hosts?limit=0",
                 "/api/v1/hosts?since=yesterday", "/api/v1/hosts/abc",
                 "/api/v1/indicators/top?limit=x"):
        status, doc = collector.get(path, admin)
        assert status == 400 and doc["error"], path
    assert collector.get("/api/v1/hosts/999", admin)[0] == 404


def test_health_and_the_api_document_need_no_token(collector: Collector) -> None:
    assert collector.get("/api/v1/healthz") == (200, {"status": "ok"})
    status, doc = collector.get("/api/v1/openapi.json")
    assert status == 200 and doc["openapi"].startswith("3.1")


def test_a_batch_is_stored_once_and_hosts_read_back(tmp_path: Path, backend: str) -> None:
    collector = Collector(tmp_path / "c", database=backend).start()
    try:
        token = collector.sensor_token("gw1", UNIT)
        assert collector.get("/api/v1/identity", token) == (
            200, {"kind": "sensor", "name": "gw1", "unit": UNIT, "group": None})
        assert post_gzip(collector, token, batch("gw1", 1))[1]["duplicate"] is False
        assert collector.post("/api/v1/events", token, batch("gw1", 1))[1]["duplicate"] is True
        assert collector.post("/api/v1/events", token, batch("gw1", 2, hits=4))[0] == 200
        assert collector.post("/api/v1/events", token, batch("gw1", 1, stream="s2"))[0] == 200
        assert collector.hosts() == {"192.168.1.10": (10, 1, "infected"),
                                     "192.168.1.99": (0, 0, "clean")}
        admin = collector.admin_token
        _, doc = collector.get("/api/v1/hosts?status=infected", admin)
        [host] = doc["hosts"]
        assert set(host) >= {"id", "unit", "sensor", "ip", "mac", "first_seen", "last_seen",
                             "hits", "indicators", "status"}
        assert (host["unit"], host["sensor"]) == (UNIT, "gw1")
        assert host["first_seen"] == "2022-09-12T07:00:05+07:00"     # collector's zone
        _, detail = collector.get(f"/api/v1/hosts/{host['id']}", admin)
        assert detail["hits_by_day"] == [{"day": "2022-09-12", "indicator": "evil.example",
                                          "indicator_type": "domain", "hits": 10}]
        assert len(detail["recent_alerts"]) == 3
        _, doc = collector.get("/api/v1/hosts?status=clean", admin)
        assert doc["hosts"][0]["mac"] == "02:00:00:00:00:99"
        _, top = collector.get("/api/v1/indicators/top", admin)
        assert top["indicators"] == [{"indicator": "evil.example", "indicator_type": "domain",
                                      "hits": 10, "hosts": 1}]
        _, sensors = collector.get("/api/v1/sensors", admin)
        assert [(s["id"], s["batches"], s["alerts"]) for s in sensors["sensors"]] == [
            ("gw1", 3, 3)]
    finally:
        collector.stop()


def test_handled_hosts_become_infected_again_on_a_new_hit(tmp_path: Path, backend: str) -> None:
    collector = Collector(tmp_path / "c", database=backend).start()
    try:
        token, admin = collector.sensor_token("gw1", UNIT), collector.admin_token
        collector.post("/api/v1/events", token, batch("gw1", 1))
        [host_id] = [h["id"] for h in collector.get("/api/v1/hosts?status=infected",
                                                    admin)[1]["hosts"]]
        status, host = collector.post(f"/api/v1/hosts/{host_id}/handled", admin)
        assert status == 200 and host["status"] == "handled" and host["handled_by"]
        # a hit later in packet time than the mark: infected again
        collector.post("/api/v1/events", token, batch("gw1", 2, hour=1_800_000_000 // 3600 * 3600))
        assert collector.hosts()["192.168.1.10"][2] == "infected"
    finally:
        collector.stop()


def test_quiet_period_in_the_sensors_time_makes_a_host_handled(tmp_path: Path) -> None:
    collector = Collector(tmp_path / "c", extra="quiet_period_days: 7\n").start()
    try:
        token = collector.sensor_token("gw1", UNIT)
        collector.post("/api/v1/events", token, batch("gw1", 1))
        assert collector.hosts()["192.168.1.10"][2] == "infected"
        later = batch("gw1", 2, host="192.168.1.11", hour=1_662_940_800 + 8 * 86400)
        later["counts"], later["alerts"] = [], []        # the sensor watched, no hit
        collector.post("/api/v1/events", token, later)
        assert collector.hosts()["192.168.1.10"][2] == "handled"
    finally:
        collector.stop()


def test_tokens_cli_prints_only_the_token_and_lists_them_hashed(collector: Collector) -> None:
    result = collector.cli("tokens", "add", "gw9", "--unit", "Đơn vị mới")
    token = result.stdout.strip()
    assert token.startswith("madoc_") and "\n" not in token
    assert "not in the directory" in result.stderr
    listing = collector.cli("tokens", "list").stdout
    assert "gw9" in listing and token not in listing
    assert (collector.directory / "collector.db").read_bytes().find(token.encode()) == -1
    result = collector.cli("tokens", "revoke", "nobody-such", check=False)
    assert result.returncode == 1


def test_the_units_directory_imports_as_is(collector: Collector) -> None:
    tsv = Path(__file__).resolve().parents[2] / "deploy" / "units.tsv"
    result = collector.cli("units", "import", str(tsv))
    assert "73 units added" in result.stdout
    lines = collector.cli("units", "list").stdout.splitlines()
    groups = {line.split("\t")[0] for line in tsv.read_text(encoding="utf-8").splitlines()[1:]}
    assert len(lines) == 73 and {line.split("\t")[0] for line in lines} == groups
    assert collector.cli("units", "import", str(tsv)).stdout.count("73 updated") == 1


def test_https_with_a_certificate_and_the_sensor_verifying_it(tmp_path: Path) -> None:
    import ssl

    cert, key = self_signed(tmp_path)
    context = ssl.create_default_context(cafile=str(cert))
    collector = Collector(tmp_path / "c", extra=f"tls: {{cert: {cert}, key: {key}}}\n")
    collector.start(context=context)
    try:
        assert collector.get("/api/v1/healthz", context=context)[0] == 200
        with pytest.raises(OSError):                  # unknown CA: refused
            collector.get("/api/v1/healthz", context=ssl.create_default_context())
    finally:
        collector.stop()


def test_plain_http_off_loopback_is_refused_at_start(tmp_path: Path) -> None:
    collector = Collector(tmp_path / "c")
    collector.config.write_text(collector.config.read_text().replace("127.0.0.1", "0.0.0.0"))
    result = collector.cli("run", check=False)
    assert result.returncode == 2 and "refusing plain HTTP" in result.stderr


def test_json_errors_for_unknown_paths(collector: Collector) -> None:
    status, doc = collector.get("/api/v1/nothing", collector.admin_token)
    assert status == 404 and json.dumps(doc)


def test_systemd_is_told_when_the_collector_is_ready_alive_and_stopping(tmp_path: Path) -> None:
    """Type=notify and WatchdogSec in madoc-collector.service: READY=1 only once the API
    answers, WATCHDOG=1 from the event loop, STOPPING=1 at SIGTERM, exit status 0."""
    collector = Collector(tmp_path / "c")
    notify = NotifySocket(tmp_path / "notify.sock")
    collector.start(env=dict(os.environ, NOTIFY_SOCKET=str(notify.path),
                             WATCHDOG_USEC="400000"))
    try:
        notify.wait_for("READY=1", 10, lambda: False, collector.log.read_text)
        assert collector.get("/api/v1/healthz")[0] == 200
        notify.wait_for("WATCHDOG=1", 5, lambda: False, collector.log.read_text, count=2)
        collector.stop()
        assert collector.process.returncode == 0
        notify.wait_for("STOPPING=1", 5, lambda: False, collector.log.read_text)
    finally:
        collector.stop()
        notify.close()
    assert sum(m == "WATCHDOG=1" for m in notify.messages) >= 2


def test_json_log_lines_for_a_log_shipper(tmp_path: Path) -> None:
    collector = Collector(tmp_path / "c").start(run_args=("--log-format", "json"))
    collector.stop()
    entries = [json.loads(line) for line in collector.log.read_text().splitlines()]
    assert entries and {e["program"] for e in entries} == {"madoc-collector"}
    assert any("listening on http://127.0.0.1:" in e["message"] for e in entries)
    assert all(e["ts"].endswith("+00:00") and e["level"] for e in entries)

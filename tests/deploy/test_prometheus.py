"""A real Prometheus server (Debian's `prometheus`) with the shipped scrape configuration
and alerting rules scrapes a running sensor and collector; PromQL gives the hit count
replay gives. Every query of the Grafana dashboard and of the alerting rules names a
metric the two expose, and Prometheus evaluates each without error."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from sensor.config import DEFAULT_FILTER
from tests.collector.harness import Collector, free_port
from tests.conftest import ROOT, RULES, run_pipeline
from tests.daemon.netns import SensorProcess, Wire, inside
from tests.daemon.test_daemon import CAPTURES, write_config

DEPLOY = ROOT / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "madoc-province.json"
ALERTS = DEPLOY / "prometheus" / "madoc-alerts.yml"
UNIT = "Sở Tài chính"
METRIC = re.compile(r"\bmadoc_[a-z0-9_]+")


@dataclass
class Office:
    """What the test left running for the checks: a Prometheus API inside the wire's
    namespace b and the hit count replay gives for the same captures."""
    wire: Wire
    api: str
    hits: int
    alerts: int

    def query(self, expr: str) -> list[dict]:
        url = f"{self.api}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        with inside(self.wire.b), urllib.request.urlopen(url, timeout=10) as answer:
            doc = json.load(answer)
        assert doc["status"] == "success", (expr, doc)
        return doc["data"]["result"]

    def get(self, path: str) -> dict:
        with inside(self.wire.b), urllib.request.urlopen(self.api + path, timeout=10) as answer:
            return json.load(answer)["data"]


def prometheus_config(directory: Path, sensor: str, collector: str) -> Path:
    """The shipped prometheus.yml and alerting rules, with this test's targets and a
    one-second scrape so the test need not wait 30 s."""
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    shutil.copy(ALERTS, directory / ALERTS.name)
    (directory / "madoc-sensors.yml").write_text(yaml.safe_dump(
        [{"targets": [sensor], "labels": {"unit": UNIT}}], allow_unicode=True))
    (directory / "madoc-collectors.yml").write_text(yaml.safe_dump([{"targets": [collector]}]))
    path = directory / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def wait_for(check, what: str, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not seen in {timeout} s")
        time.sleep(0.5)


@pytest.fixture(scope="module")
def office(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Office]:
    if not shutil.which("prometheus"):
        pytest.fail("needs Debian's prometheus package (.ci/run installs it)")
    tmp = tmp_path_factory.mktemp("prometheus")
    expected = run_pipeline(CAPTURES, [RULES], bpf_filter=DEFAULT_FILTER)
    hits = sum(len(hit.indicator.sources) for hit in expected.hits)
    with Wire() as wire:
        collector = Collector(tmp / "collector")
        token = tmp / "sensor.token"
        token.write_text(collector.sensor_token("gw1", UNIT) + "\n")
        sensor_port, api_port = free_port(), free_port()
        uplink = (f"collector: {{url: '{collector.url}', token_file: {token}, "
                  f"batch_seconds: 1}}\nmetrics: {{listen: '127.0.0.1:{sensor_port}'}}\n")
        config = write_config(tmp, wire, collector=uplink)
        scrape = prometheus_config(tmp, f"127.0.0.1:{sensor_port}",
                                   f"127.0.0.1:{collector.metrics_port}")
        with inside(wire.b):
            collector.start()
            sensor = SensorProcess(wire.b, config)
            log = (tmp / "prometheus.log").open("w")
            prometheus = subprocess.Popen(
                ["prometheus", f"--config.file={scrape}", f"--storage.tsdb.path={tmp / 'tsdb'}",
                 f"--web.listen-address=127.0.0.1:{api_port}"],
                stdout=log, stderr=subprocess.STDOUT)
        try:
            sensor.wait_for("READY=1")
            wire.replay(*CAPTURES)
            yield Office(wire, f"http://127.0.0.1:{api_port}", hits, len(expected.hits))
        finally:
            prometheus.terminate()
            prometheus.wait(timeout=30)
            log.close()
            assert sensor.stop() == 0, sensor.output
            collector.stop()


def test_promql_gives_the_hit_count_of_replay(office: Office) -> None:
    def scraped_all() -> bool:
        hits = office.query('sum(madoc_hits_total{job="madoc-sensor"})')
        stored = office.query('sum(madoc_collector_alerts_ingested_total'
                              '{job="madoc-collector"})')
        return (bool(hits) and float(hits[0]["value"][1]) == office.hits
                and bool(stored) and float(stored[0]["value"][1]) == office.alerts)

    wait_for(scraped_all, f"{office.hits} hits on the sensor, {office.alerts} alerts stored")
    targets = office.get("/api/v1/targets")["activeTargets"]
    assert {(t["labels"]["job"], t["health"]) for t in targets} == {
        ("madoc-sensor", "up"), ("madoc-collector", "up")}
    by_unit = office.query("sum by (unit) (madoc_collector_alerts_ingested_total)")
    assert [(r["metric"]["unit"], float(r["value"][1])) for r in by_unit] == [
        (UNIT, office.alerts)]
    sensor_unit = office.query('madoc_sensor_info{job="madoc-sensor"}')
    assert sensor_unit[0]["metric"]["unit"] == UNIT     # the label from madoc-sensors.yml


def dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    queries = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    queries += [v["query"]["query"].removeprefix("label_values(").split(",")[0]
                for v in dashboard["templating"]["list"]]
    return queries


def alert_queries() -> list[str]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


def test_every_dashboard_and_alert_query_names_a_metric_that_exists(office: Office) -> None:
    wait_for(lambda: office.query("madoc_collector_hosts"), "the collector's hosts")
    exposed = set(office.get("/api/v1/label/__name__/values"))
    for expr in dashboard_queries() + alert_queries():
        named = set(METRIC.findall(expr))
        assert named or "up{" in expr, expr
        assert named <= exposed, (expr, named - exposed)


def test_prometheus_evaluates_every_dashboard_query_and_loads_the_alerting_rules(
        office: Office) -> None:
    grafana = {"$__rate_interval": "1m", "$unit": ".*"}
    for expr in dashboard_queries():
        for variable, value in grafana.items():
            expr = expr.replace(variable, value)
        office.query(expr)             # asserts status success: the query parses and runs
    # The capture panels have data: the sensor received the replayed packets, dropped none.
    assert float(office.query("sum(madoc_kernel_received_packets_total)")[0]["value"][1]) > 0
    assert float(office.query("sum(madoc_kernel_dropped_packets_total)")[0]["value"][1]) == 0
    rules = wait_for(lambda: [r for g in office.get("/api/v1/rules")["groups"]
                              for r in g["rules"] if r.get("lastEvaluation", "").startswith("2")],
                     "the alerting rules evaluated")
    assert len(rules) == len(alert_queries())
    assert {r["health"] for r in rules} == {"ok"}, [r for r in rules if r["health"] != "ok"]
    assert [r["name"] for r in rules if r["state"] != "inactive"] == []   # a healthy office


def test_dashboard_uses_the_provisioned_datasource() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    source = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/madoc.yaml"
                             ).read_text())["datasources"][0]
    assert dashboard["uid"] and dashboard["title"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == source["uid"], panel["title"]
        assert panel["targets"] and all(t["datasource"]["uid"] == source["uid"]
                                        for t in panel["targets"]), panel["title"]
    provider = yaml.safe_load((DEPLOY / "grafana/provisioning/dashboards/madoc.yaml"
                               ).read_text())["providers"][0]
    assert provider["type"] == "file" and provider["options"]["path"]

"""The collector's /metrics, scraped for real after `madoc-sensor replay --collector` sent the
demo captures: its figures equal the replay's."""

from __future__ import annotations

import subprocess
import urllib.error
from pathlib import Path

from tests.collector.harness import Collector, parse_metrics
from tests.conftest import RULES, demo_captures, run_pipeline
from tests.uplink.test_uplink_e2e import UNIT, registered, sensor_command


def test_collector_metrics_after_a_replay(tmp_path: Path) -> None:
    captures = demo_captures()
    expected = run_pipeline(captures, [RULES])
    collector = Collector(tmp_path / "c").start()
    try:
        token_file = registered(collector, tmp_path)
        subprocess.run(sensor_command(collector, token_file, tmp_path / "spool.db", captures),
                       check=True, capture_output=True)
        assert collector.get("/api/v1/hosts/1", "not-a-token")[0] == 401
        found = parse_metrics(collector.metrics())
    finally:
        collector.stop()
    stored = found["madoc_collector_batches_total", (("result", "stored"),)]
    assert stored >= 1
    assert found.get(("madoc_collector_batches_total", (("result", "duplicate"),)), 0) == 0
    assert found["madoc_collector_ingest_seconds_count", ()] == stored
    assert found["madoc_collector_alerts_ingested_total", (("unit", UNIT),)] == len(expected.hits)
    assert found["madoc_collector_hosts", (("status", "infected"), ("unit", UNIT))] == len(
        expected.pipeline.tally.hosts)
    assert 0 <= found["madoc_collector_sensor_last_seen_seconds",
                      (("sensor", "gw1"), ("unit", UNIT))] < 120
    events = (("endpoint", "/api/v1/events"), ("method", "POST"), ("status", "200"))
    assert found["madoc_collector_requests_total", events] == stored
    unauthorised = (("endpoint", "/api/v1/hosts/{id}"), ("method", "GET"), ("status", "401"))
    assert found["madoc_collector_requests_total", unauthorised] == 1


def test_metrics_can_be_turned_off(tmp_path: Path) -> None:
    collector = Collector(tmp_path / "c", extra="")
    collector.config.write_text(collector.config.read_text().replace(
        f"metrics: {{listen: '127.0.0.1:{collector.metrics_port}'}}", "metrics: {listen: off}"))
    collector.start()
    try:
        collector.metrics()
        raise AssertionError("metrics answered while off")
    except urllib.error.URLError:
        pass
    finally:
        collector.stop()

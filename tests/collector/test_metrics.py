"""The collector's /metrics, scraped for real after `madoc-sensor replay --collector` sent the
demo captures: its figures equal the replay's."""

from __future__ import annotations

import ssl
import subprocess
import urllib.error
from pathlib import Path

import pytest

from tests.collector.harness import (
    Collector,
    basic_auth_file,
    fetch,
    parse_metrics,
    self_signed,
)
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


def test_metrics_over_https_with_basic_auth(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    auth = basic_auth_file(tmp_path)
    collector = Collector(tmp_path / "c")
    collector.config.write_text(collector.config.read_text().replace(
        f"metrics: {{listen: '127.0.0.1:{collector.metrics_port}'}}",
        f"metrics: {{listen: '127.0.0.1:{collector.metrics_port}', cert_file: {cert}, "
        f"key_file: {key}, basic_auth_file: {auth}}}"))
    collector.start()
    url = f"https://127.0.0.1:{collector.metrics_port}/metrics"
    context = ssl.create_default_context(cafile=str(cert))
    try:
        assert fetch(url, context)[0] == 401
        assert fetch(url, context, ("prometheus", "wrong"))[0] == 401
        status, body = fetch(url, context, ("prometheus", "s3cret:with-colon"))
        assert status == 200 and "madoc_collector_requests_total" in body
        with pytest.raises(OSError):                  # not over plain HTTP
            fetch(url.replace("https", "http"))
    finally:
        collector.stop()


@pytest.mark.parametrize(("setting", "content", "said"), [
    ("basic_auth_file: {bad}", "no colon here\n", "expected one line USER:PASSWORD"),
    ("cert_file: {bad}, key_file: {bad}", "not a certificate\n",
     "cannot load TLS certificate {bad}"),
])
def test_bad_metrics_settings_stop_the_start(tmp_path: Path, setting: str, content: str,
                                             said: str) -> None:
    collector = Collector(tmp_path / "c")
    bad = tmp_path / "bad"
    bad.write_text(content)
    collector.config.write_text(collector.config.read_text().replace(
        f"metrics: {{listen: '127.0.0.1:{collector.metrics_port}'}}",
        f"metrics: {{listen: '127.0.0.1:{collector.metrics_port}', "
        f"{setting.format(bad=bad)}}}"))
    done = collector.cli("run", check=False)
    assert done.returncode == 2 and said.format(bad=bad) in done.stderr

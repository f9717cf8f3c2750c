"""The collector under hostile load: while a sensor back-fills 430 batches through the
real uplink, 10,000 hostile requests (bogus tokens, gzip bombs, truncated gzip, batches
naming another sensor) and 200 slow clients. Every legitimate batch arrives exactly
once, every hostile request is refused with its reason, memory stays bounded, and the
collector answers its health check after."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.collector.harness import Collector
from tests.collector.hostile import SLOW_CLIENTS, hostile_load
from tests.conftest import ROOT, memory_kib
from tests.uplink.test_uplink_e2e import (  # noqa: F401 - fixtures
    long_capture,
    reference,
    registered,
    sensor_command,
    totals,
)

MEMORY_BUDGET_MIB = 100       # the collector's growth under this load (docs: measured 18)


def test_a_sensors_batches_arrive_exactly_once_under_hostile_load(
        tmp_path: Path, long_capture: Path, reference: tuple[dict, int]) -> None:  # noqa: F811
    collector = Collector(tmp_path / "c").start()
    try:
        assert collector.process is not None
        before = memory_kib(collector.process.pid)
        token_file = registered(collector, tmp_path)
        rogue = collector.sensor_token("rogue")           # a compromised sensor's token
        sensor = subprocess.Popen(sensor_command(collector, token_file, tmp_path / "spool.db",
                                                 [long_capture], "--batch-seconds", "5"),
                                  stderr=subprocess.PIPE, text=True, cwd=ROOT)
        statuses, _ = hostile_load(collector.url, rogue)
        _, stderr = sensor.communicate(timeout=180)
        assert sensor.returncode == 0, stderr
        assert totals(collector) == reference
        assert statuses.pop("slow clients connected") == SLOW_CLIENTS
        assert sum(statuses.values()) == 10_000
        assert statuses == {401: 4000, 413: 2000, 400: 2000, 403: 2000}, statuses
        assert (memory_kib(collector.process.pid) - before) / 1024 < MEMORY_BUDGET_MIB
        assert collector.get("/api/v1/healthz")[0] == 200
    finally:
        collector.stop()

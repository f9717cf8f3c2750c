"""Two collector processes sharing one PostgreSQL: concurrent writers, one truth."""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.collector.harness import Collector, PostgresServer
from tests.collector.test_api import batch
from tests.conftest import ROOT
from tests.uplink.test_uplink_e2e import sensor_command
from tests.uplink.traffic import write_dns_capture


def unit_hosts(collector: Collector, unit: str) -> dict[str, tuple[int, int]]:
    _, doc = collector.get(f"/api/v1/hosts?unit={unit}&limit=100000", collector.admin_token)
    return {h["ip"]: (h["hits"], h["indicators"]) for h in doc["hosts"]}


@pytest.mark.slow
def test_two_collectors_on_one_postgresql_write_at_once(tmp_path: Path,
                                                        postgres: PostgresServer) -> None:
    database = postgres.new_database()
    first = Collector(tmp_path / "a", database=database).start()
    second = Collector(tmp_path / "b", database=database).start()
    try:
        capture = write_dns_capture(tmp_path / "dns.pcap", 30_000)
        tokens = {}
        for sensor_id, unit in (("gw1", "U1"), ("gw2", "U2"), ("gw3", "U3")):
            tokens[sensor_id] = tmp_path / f"{sensor_id}.token"
            tokens[sensor_id].write_text(first.sensor_token(sensor_id, unit))
        # gw1 sends through one collector, gw2 through the other, at the same time
        runs = [subprocess.Popen(sensor_command(collector, tokens[sensor_id],
                                                tmp_path / f"{sensor_id}.db", [capture],
                                                "--batch-seconds", "2"),
                                 stderr=subprocess.PIPE, text=True, cwd=ROOT)
                for collector, sensor_id in ((first, "gw1"), (second, "gw2"))]
        # gw3 posts every batch to both collectors at once (a retry through a balancer)
        token3 = tokens["gw3"].read_text().strip()
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(
                lambda args: args[0].post("/api/v1/events", token3, batch("gw3", args[1])),
                [(c, n) for n in range(1, 101) for c in (first, second)]))
        assert all(status == 200 for status, _ in answers)
        assert sum(not doc["duplicate"] for _, doc in answers) == 100
        for run in runs:
            _, stderr = run.communicate(timeout=120)
            assert run.returncode == 0, stderr
        one, two = unit_hosts(first, "U1"), unit_hosts(second, "U2")
        assert one == two and sum(hits for hits, _ in one.values()) == 1500
        assert unit_hosts(second, "U3")["192.168.1.10"] == (300, 1)
    finally:
        first.stop()
        second.stop()

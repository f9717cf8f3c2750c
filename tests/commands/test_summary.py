"""`madoc-sensor summary`: a unit without a collector gets the form 2 numbers from the
sensor's own store, counted exactly as the collector counts them. The demo captures are
replayed once, both to a real collector and into a local summary store; the two reports
agree, and the summary's hosts and hits are replay's."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.collector.harness import ROOT, Collector
from tests.conftest import RULES, demo_captures, run_pipeline
from tests.uplink.test_uplink_e2e import UNIT, registered, sensor_command

PERIOD = ("--from", "2022-09-01", "--to", "2022-09-30")   # the demo captures' month


def summary(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sensor", "summary", *args],
                          capture_output=True, text=True, cwd=ROOT, check=check)


def test_summary_counts_what_the_collector_counts(tmp_path: Path) -> None:
    captures = demo_captures()
    expected = run_pipeline(captures, [RULES])
    store = tmp_path / "summary.db"
    collector = Collector(tmp_path / "c").start()
    try:
        token_file = registered(collector, tmp_path)
        subprocess.run(sensor_command(collector, token_file, tmp_path / "spool.db", captures,
                                      "--summary-db", str(store), "--unit", UNIT),
                       check=True, capture_output=True)
        central = json.loads(collector.cli("report", *PERIOD, "--unit", UNIT,
                                           "-f", "json").stdout)
    finally:
        collector.stop()
    local = json.loads(summary("--db", str(store), *PERIOD, "-f", "json").stdout)
    [mine], [theirs] = local["form2"], central["form2"]
    for key in ("computers_covered", "computers_found", "computers_handled",
                "top_indicators"):
        assert mine[key] == theirs[key], key
    assert mine["unit"] == UNIT and mine["deployed"]
    # A listed address reaching in does not make a host infected: outbound hits only.
    outbound = [hit for hit in expected.hits if hit.outbound]
    assert len(outbound) < len(expected.hits)
    assert mine["computers_found"] == len({hit.host for hit in outbound}) > 0
    assert sum(i["hits"] for i in mine["top_indicators"]) == len(outbound)
    assert [(h["ip"], h["hits"]) for h in mine["hosts_still_infected"]] == [
        (h["ip"], h["hits"]) for h in theirs["hosts_still_infected"]]
    markdown = summary("--db", str(store), *PERIOD).stdout
    assert "Báo cáo kết quả triển khai làm sạch mã độc" in markdown and UNIT in markdown


def test_summary_errors_are_one_clear_line(tmp_path: Path) -> None:
    done = summary("--db", str(tmp_path / "none.db"), check=False)
    assert done.returncode == 2 and "no summary store at" in done.stderr
    store = tmp_path / "s.db"
    subprocess.run([sys.executable, "-m", "sensor", "replay", "--eve", "/dev/null",
                    "--summary-db", str(store), str(demo_captures()[0])],
                   check=True, capture_output=True, cwd=ROOT)
    done = summary("--db", str(store), "--week", "2022-38", check=False)
    assert done.returncode == 2 and "expected YYYY-Www" in done.stderr

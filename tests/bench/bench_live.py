#!/usr/bin/env python3
"""Live capture benchmark: the 1M-packet capture sent with tcpreplay into a veth pair
between two network namespaces while `madoc-sensor run` captures on the other end.

For each capture backend (libpcap's ring, our own ring), filter (default, all),
worker count (1, 2) and rate (50k, 100k, 200k, 400k pps and top speed) it
reports what tcpreplay achieved, what the daemon processed, the kernel's drops
(PACKET_STATISTICS) and the hits, beside the hits of an offline run of the same
pipeline with the same filter. Needs root.

    sudo .venv/bin/python tests/bench/bench_live.py [--rates 50000,200000] [--workers 1]
                                                    [--backends libpcap,ring]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))

from sensor.config import FILTERS  # noqa: E402
from tests.bench.run_bench import CAPTURE, RULES, machine  # noqa: E402
from tests.conftest import run_pipeline  # noqa: E402
from tests.daemon.netns import SensorProcess, Wire  # noqa: E402

RATES = [50_000, 100_000, 200_000, 400_000, 0]       # 0: top speed
_STOPPED = re.compile(r"stopped after .*?: ([\d,]+) packets.*?, ([\d,]+) dropped by the kernel, "
                      r"([\d,]+) hits")
_RATED = re.compile(r"Rated: [\d.]+ Bps, [\d.]+ Mbps, ([\d.]+) pps")


def _number(text: str) -> int:
    return int(text.replace(",", ""))


def one_run(directory: Path, wire: Wire, backend: str, filter_name: str, workers: int,
            rate: int) -> tuple[int, int, int, int]:
    """(pps achieved by tcpreplay, packets processed, kernel drops, hits)."""
    config = directory / "sensor.yaml"
    config.write_text(
        f"sensor:\n  id: bench\n  interfaces: [{wire.end_b}]\n  workers: {workers}\n"
        f"  user: root\n  filter: {filter_name}\n"
        f"  capture: {{backend: {backend}, buffer_mib: 64}}\n"
        f"rules: {RULES}\nrules_reload_seconds: 3600\nstate_dir: {directory / 'state'}\n")
    sensor = SensorProcess(wire.b, config)
    sensor.wait_for("READY=1", timeout=120)
    sent = wire.replay(CAPTURE, pps=rate or None)
    time.sleep(2.0)
    status = sensor.stop(timeout=120)
    if status != 0:
        raise RuntimeError(sensor.output[-2000:])
    packets, drops, hits = (_number(g) for g in _STOPPED.search(sensor.output).groups())
    achieved = _RATED.search(sent)
    return int(float(achieved.group(1))) if achieved else 0, packets, drops, hits


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default=",".join(map(str, RATES)),
                        help="packets per second, comma-separated; 0 is top speed")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--filters", default="default,all")
    parser.add_argument("--backends", default="libpcap,ring")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench_live: skipped: needs root (network namespaces, AF_PACKET); run it as "
              "root: sudo .venv/bin/python tests/bench/bench_live.py", file=sys.stderr)
        return 0
    if not CAPTURE.exists() or not RULES.exists():
        subprocess.run([sys.executable, str(HERE / "make_bench_pcap.py")], check=True)
    print(f"# live capture into a veth pair: {machine()}")
    print("| backend | filter | workers | asked pps | sent pps | processed | kernel drops "
          "| hits | offline hits |")
    print("|---|---|---|---|---|---|---|---|---|")
    for filter_name in args.filters.split(","):
        offline = len(run_pipeline([CAPTURE], [RULES], FILTERS[filter_name] or None).hits)
        for backend in args.backends.split(","):
            for workers in map(int, args.workers.split(",")):
                for rate in map(int, args.rates.split(",")):
                    with tempfile.TemporaryDirectory(prefix="madoc-bench-") as tmp, \
                            Wire() as wire:
                        sent, packets, drops, hits = one_run(Path(tmp), wire, backend,
                                                             filter_name, workers, rate)
                    print(f"| {backend} | {filter_name} | {workers} | {rate or 'top'} | "
                          f"{sent:,} | {packets:,} | {drops:,} | {hits:,} | {offline:,} |",
                          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

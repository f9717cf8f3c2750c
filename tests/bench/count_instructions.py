#!/usr/bin/env python3
"""Instructions per packet and per lookup, counted by callgrind: an A/B measure that
this VM's clock (±10–30% between runs) cannot give.

`valgrind --tool=callgrind` counts the instructions a run executes, the same on every
run of the same code and input. Each workload runs twice — with its input and with
none — and the difference is divided by the input's size, so interpreter start,
imports and loading the rules drop out. Workloads: `pipeline` (the first 102,400
packets of the `make bench` capture through the pipeline and the EVE writer, flows
flushed at the end), `no-app` (the same, names inside connections not read),
`names` and `addresses` (200,000 lookups of `bench_matcher.py`'s
mix, from its compiled cache). Run `make bench` first (it makes the inputs); compare
two trees by running this from each. Needs valgrind (Debian package `valgrind`); takes
a few minutes.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
BATCHES = 50                 # of 2,048 packets
LOOKUPS = 200_000

WORKLOAD = r'''
import sys
from datetime import timezone
from pathlib import Path
from sensor.support import gcpolicy
here, kind, size = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
if kind in ("pipeline", "no-app"):
    from sensor.blocklist.loader import load_blocklist
    from sensor.core.pipeline import Pipeline, event_chunks
    from sensor.sinks.eve import EveWriter
    from sensor.sources.pcapfile import CaptureFile
    blocklist = load_blocklist([here / "bench-rules.yaml"])[0]
    batches = []
    for batch in CaptureFile(here / "bench-1m.pcap").batches():
        if len(batches) >= size:
            break
        batches.append(batch)
    pipeline = Pipeline(blocklist, app=kind == "pipeline")
    writer = EveWriter(open(sys.argv[4], "wb"), tz=timezone.utc)
    gcpolicy.settle()
    for data, records, link in batches:
        pipeline.feed_batch(data, records, link)
        for events in event_chunks(pipeline.events):
            writer.write(events)
        pipeline.events.clear()
    pipeline.finish()
    writer.write(pipeline.events)
else:
    from sensor.blocklist.cache import load_cached
    work = here / "matcher"
    blocklist, _, from_cache = load_cached([work / "rules.yaml"], work / "cache")
    assert from_cache, "the compiled cache was not filled"
    if kind == "names":
        keys = (work / "names.txt").read_text().split()[:size]
        match = blocklist.match_domain
    else:
        keys = [bytes.fromhex(h) for h in (work / "addresses.txt").read_text().split()[:size]]
        match = blocklist.match_address
    sum(match(key) is not None for key in keys)
'''


FILL_CACHE = """
import sys
from pathlib import Path
from sensor.blocklist.cache import load_cached
load_cached([Path(sys.argv[1]) / "rules.yaml"], Path(sys.argv[1]) / "cache")
"""


def instructions(kind: str, size: int) -> int:
    # A run outside valgrind first writes any stale bytecode cache, which the first
    # measured run would otherwise compile and count.
    subprocess.run([sys.executable, "-c", WORKLOAD, str(HERE), kind, "0", os.devnull],
                   check=False, cwd=ROOT, capture_output=True)   # its errors: below
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "callgrind.out"
        run = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable,
             "-c", WORKLOAD, str(HERE), kind, str(size), os.devnull],
            capture_output=True, text=True, cwd=ROOT,
            env={**os.environ, "PYTHONHASHSEED": "0"})
    if run.returncode:
        python_error = [line for line in run.stderr.splitlines() if not line.startswith("==")]
        sys.exit(f"{kind}: {(python_error or ['valgrind failed'])[-1]}")
    collected = re.search(r"Collected : (\d+)", run.stderr)
    assert collected, run.stderr
    return int(collected.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sizes = {"pipeline": BATCHES, "no-app": BATCHES, "names": LOOKUPS, "addresses": LOOKUPS}
    parser.add_argument("workloads", nargs="*", metavar="WORKLOAD",
                        help="pipeline, no-app, names or addresses (default: all)")
    args = parser.parse_args()
    unknown = set(args.workloads) - set(sizes)
    if unknown:
        parser.error(f"unknown workload {', '.join(sorted(unknown))}")
    if set(args.workloads or sizes) & {"names", "addresses"}:
        subprocess.run([sys.executable, "-c", FILL_CACHE, str(HERE / "matcher")], check=True,
                       cwd=ROOT)
    counted: dict[str, int] = {}
    for kind in args.workloads or sizes:
        work = counted[kind] = instructions(kind, sizes[kind]) - instructions(kind, 0)
        unit, count = (("lookup", LOOKUPS) if kind in ("names", "addresses")
                       else ("packet", BATCHES * 2048))
        print(f"{kind:<10} {work:>15,} instructions  {work / count:>9,.0f} a {unit}")
    if "pipeline" in counted and "no-app" in counted:
        print(f"reading names inside connections: "
              f"{100 * (counted['pipeline'] / counted['no-app'] - 1):.1f} % more instructions")
    return 0


if __name__ == "__main__":
    sys.exit(main())

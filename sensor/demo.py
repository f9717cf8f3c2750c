"""`madoc-sensor demo`: the bundled captures against the sample lists, on the terminal."""

from __future__ import annotations

import io
import json
import sys
import tempfile
from pathlib import Path

from sensor.replay import DEFAULT_RULES, ReplayOptions, replay

PCAPS = Path(__file__).resolve().parent.parent / "pcaps"


def demo_captures() -> list[Path]:
    return sorted(p for p in PCAPS.iterdir() if p.name.endswith((".pcap", ".pcapng", ".pcap.gz")))


def demo() -> int:
    captures = demo_captures()
    if not captures:
        print(f"madoc-sensor: no captures in {PCAPS}; run: python pcaps/make_pcaps.py",
              file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="madoc-demo-") as tmp:
        eve = Path(tmp) / "eve.json"
        summary = io.StringIO()
        status = replay(ReplayOptions(captures=captures, rules=[DEFAULT_RULES], eve=str(eve)),
                        summary_out=summary)
        alerts = sorted((json.loads(line) for line in eve.read_text().splitlines()
                         if '"event_type":"alert"' in line), key=lambda a: a["timestamp"])
    print(f"== madoc-sensor demo: {len(captures)} captures from {PCAPS}, rules {DEFAULT_RULES}")
    print(f"\n== alerts ({len(alerts)})")
    for alert in alerts:
        madoc = alert["madoc"]
        via = f" (resolved from {madoc['resolved_from']})" if "resolved_from" in madoc else ""
        direction = "->" if madoc["outbound"] else "<-"
        print(f"{alert['timestamp']}  {madoc['host']:<15} {direction} {madoc['seen']:<28} "
              f"{madoc['match']:<13} {madoc['indicator']} [{', '.join(madoc['sources'])}]{via}")
    print("\n== summary and per-host table")
    print(summary.getvalue(), end="")
    return status

"""`madoc-sensor rules check|lookup`: what the loaded blocklists hold and why a value matches."""

from __future__ import annotations

import os
import sys
import time
from ipaddress import ip_address
from pathlib import Path

from sensor.blocklist.formats.common import normalise_domain
from sensor.blocklist.loader import RulesError, load_blocklist
from sensor.commands.replay import DEFAULT_RULES


def resident_bytes() -> int:
    """This process's resident memory (Linux), read without slowing the load down."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def check(rules: list[Path]) -> int:
    started = time.perf_counter()
    before = resident_bytes()
    try:
        blocklist, report = load_blocklist(rules or [DEFAULT_RULES])
    except RulesError as err:
        print(f"madoc-sensor: {err}", file=sys.stderr)
        return 1
    held = resident_bytes() - before
    seconds = time.perf_counter() - started
    for source in report.sources:
        kind = "allowlist" if source.source.allow else "blocklist"
        kinds = ", ".join(f"{k} {n:,}" for k, n in sorted(source.by_kind.items())) or "nothing"
        print(f"{source.source.name} ({kind}, {source.detected_format or source.source.format}, "
              f"{source.source.path}): "
              f"{kinds}; duplicates {source.duplicates:,}; rejected {len(source.rejected):,}")
        for line in source.rejected[:20]:
            print(f"  {line}")
        if len(source.rejected) > 20:
            print(f"  … and {len(source.rejected) - 20:,} more")
        if source.error:
            print(f"  ERROR: {source.error}")
    print(f"loaded {len(blocklist.domains):,} names and {len(blocklist.addresses):,} addresses "
          f"in {seconds:.2f} s; resident memory grew by {held / 2**20:.1f} MiB "
          "(with the Public Suffix List)")
    return 1 if report.failed else 0


def lookup(rules: list[Path], values: list[str]) -> int:
    try:
        blocklist, _ = load_blocklist(rules or [DEFAULT_RULES])
    except RulesError as err:
        print(f"madoc-sensor: {err}", file=sys.stderr)
        return 1
    for value in values:
        try:
            packed = ip_address(value).packed
        except ValueError:
            packed = None
        if packed is not None:
            listed = blocklist.listed_address(packed)
            allowed = blocklist.allow_addresses.match(packed)
        else:
            try:
                name = normalise_domain(value)
            except ValueError as err:
                print(f"{value}: not a name or address ({err})")
                continue
            listed, allowed = blocklist.listed_domain(name), blocklist.allow_domains.match(name)
        if listed is None:
            print(f"{value}: not listed")
        elif allowed is not None:
            print(f"{value}: listed as {listed.value} by {', '.join(listed.sources)}, "
                  f"but allowed by {allowed}")
        else:
            print(f"{value}: MATCH {listed.value} ({listed.kind}) from {', '.join(listed.sources)}"
                  f" campaign {listed.campaign or '-'} severity {listed.severity}")
    return 0

"""`madoc-sensor rules check|lookup`: what the loaded blocklists hold and why a value matches."""

from __future__ import annotations

import os
import sys
import time
from ipaddress import ip_address
from pathlib import Path

from sensor.blocklist.formats.common import normalise_domain
from sensor.blocklist.formats.fingerprints import JA3_MD5, JA4
from sensor.blocklist.loader import RulesError, load_blocklist
from sensor.blocklist.matcher import Blocklist
from sensor.commands.replay import DEFAULT_RULES
from sensor.core.decode.http1 import normalise_url
from sensor.core.events import Indicator


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
        kind = "allowlist" if source.source.allow else \
            "DoH resolvers" if source.source.resolvers else "blocklist"
        kinds = ", ".join(f"{k} {n:,}" for k, n in sorted(source.by_kind.items())) or "nothing"
        print(f"{source.source.name} ({kind}, {source.detected_format or source.source.format}, "
              f"{source.source.path}): "
              f"{kinds}; duplicates {source.duplicates:,}; rejected {len(source.rejected):,}")
        https = sum(1 for url in _source_urls(blocklist, source.source.name)
                    if url.startswith("https://"))
        if https:
            print(f"  {https:,} https URLs: only their server name is on the wire, so they "
                  "never alert (list the host as a domain to catch it)")
        for line in source.rejected[:20]:
            print(f"  {line}")
        if len(source.rejected) > 20:
            print(f"  … and {len(source.rejected) - 20:,} more")
        if source.error:
            print(f"  ERROR: {source.error}")
    print(f"loaded {len(blocklist.domains):,} names, {len(blocklist.addresses):,} addresses, "
          f"{len(blocklist.urls):,} URLs and {len(blocklist.fingerprints):,} fingerprints "
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
        print(f"{value}: {_lookup(blocklist, value.strip())}")
    return 0


def _source_urls(blocklist: Blocklist, source: str) -> list[str]:
    """The URLs one source listed."""
    urls = blocklist.urls
    listed = [url for url, p in urls.exact.items() if source in p.sources]
    listed += [url for group in urls.prefixes.values() for url, p in group
               if source in p.sources]
    return listed


def _lookup(blocklist: Blocklist, value: str) -> str:
    """What the blocklist says of a name, address, URL or fingerprint, as one line."""
    allowed: str | None = None
    if "://" in value:
        try:
            url = normalise_url(value)
        except ValueError as err:
            return f"not a URL the sensor can match ({err})"
        found = blocklist.urls.match_entry(url)
        host = url.split("/")[2].rsplit(":", 1)[0] if "]" not in url else ""
        listed = _url_indicator(found) if found else None
        allowed = blocklist.allow_domains.match(host) if host else None
        if url.startswith("https://") and listed is not None:
            return f"listed as {listed.value} by {', '.join(listed.sources)}, but an https " \
                   "URL is never seen on the wire (only its server name is)"
    elif JA3_MD5.match(value.lower()) or JA4.match(value.lower()):
        listed = blocklist.match_fingerprint(value.lower())
    else:
        try:
            packed: bytes | None = ip_address(value).packed
        except ValueError:
            packed = None
        if packed is not None:
            listed = blocklist.listed_address(packed)
            allowed = blocklist.allow_addresses.match(packed)
        else:
            try:
                name = normalise_domain(value)
            except ValueError as err:
                return f"not a name, address, URL or fingerprint ({err})"
            listed, allowed = blocklist.listed_domain(name), blocklist.allow_domains.match(name)
    if listed is None:
        return "not listed"
    if allowed is not None:
        return f"listed as {listed.value} by {', '.join(listed.sources)}, but allowed by {allowed}"
    return f"MATCH {listed.value} ({listed.kind}) from {', '.join(listed.sources)} campaign " \
           f"{listed.campaign or '-'} severity {listed.severity}"


def _url_indicator(found: tuple) -> Indicator:
    listed, provenance = found
    return Indicator(listed, "url", *provenance)

"""The formats by name, and the guess from content when rules.yaml names none."""

from __future__ import annotations

from sensor.blocklist.formats import (
    adblock,
    csvfile,
    domains,
    fingerprints,
    hosts,
    ips,
    misp,
    rpz,
    stix,
    suricata,
    zeek,
)
from sensor.blocklist.formats.common import (
    ADDRESS_LIKE,
    CSV_INDICATOR_COLUMNS,
    Parser,
    content_lines,
    is_address,
)

PARSERS: dict[str, Parser] = {
    "domains": domains.parse, "ips": ips.parse, "mixed": ips.parse_mixed,
    "hosts": hosts.parse, "csv": csvfile.parse, "rpz": rpz.parse, "zeek-intel": zeek.parse,
    "suricata-dataset": suricata.parse, "misp": misp.parse, "stix": stix.parse,
    "adblock": adblock.parse, "sslbl-ja3": fingerprints.parse_ja3,
    "ja4": fingerprints.parse_ja4}
FORMATS = tuple(PARSERS)


def parser_for(format_name: str) -> Parser | None:
    return PARSERS.get(format_name)


def detect_format(text: str) -> str:
    """Guess the format from the content; explicit `format:` in rules.yaml always wins."""
    head = text.lstrip()[:4096]
    if head.startswith(("{", "[")):
        if '"Event"' in head or '"Attribute"' in head:
            return "misp"
        if '"bundle"' in head or '"indicator"' in head:
            return "stix"
    if "#fields" in head and "indicator" in head:
        return "zeek-intel"
    if "ja3_md5" in head.lower():
        return "sslbl-ja3"
    lines = text.splitlines()[:200]
    sample = [line for _, line in content_lines(lines)][:50]
    if not sample:
        return "domains"
    if sum(line.startswith(("||", "@@||")) for line in sample) * 2 > len(sample):
        return "adblock"
    if sum(bool(fingerprints.JA4.match(line.split()[0])) for line in sample) * 2 > len(sample):
        return "ja4"
    if any(" CNAME " in f" {line} " or line.startswith("$ORIGIN") for line in sample) and \
            any("SOA" in line or "rpz" in line.lower() for line in lines):
        return "rpz"
    split = [line.split() for line in sample]
    if sum(len(t) >= 2 and is_address(t[0]) for t in split) * 2 > len(sample):
        return "hosts"
    first = lines[0] if lines else ""
    if "," in first and not first.startswith("#") and \
            any(name in first.lower() for name in CSV_INDICATOR_COLUMNS):
        return "csv"
    if sum("://" in line for line in sample) * 2 > len(sample):
        return "mixed"                  # a URL list: each URL is read as what it names
    networks = sum(bool(ADDRESS_LIKE.match(t[0])) for t in split)   # valid or not
    if networks == len(sample):
        return "ips"
    return "mixed" if networks else "domains"

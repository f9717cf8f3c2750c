"""`zeek-intel`: Zeek Intel framework files (tab-separated, `#fields` header, `-` empty).

Types read: Intel::DOMAIN, Intel::ADDR, Intel::SUBNET, and Intel::URL (its
host). `meta.desc` becomes the entry's comment and `meta.source` is kept in
it; other Intel types are rejected as unsupported.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import replace

from sensor.blocklist.formats.common import (
    BadLine,
    Parsed,
    address_entry,
    domain_entry,
    value_entry,
)


def parse(text: str, options: Mapping[str, object]) -> Iterator[Parsed]:
    fields: list[str] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip("\r\n")
        if line.startswith("#fields"):
            fields = line.split("\t")[1:]
            continue
        if not line.strip() or line.startswith("#"):
            continue
        if not fields:
            yield BadLine(number, "data before the #fields header")
            continue
        row = dict(zip(fields, (None if v == "-" else v for v in line.split("\t")), strict=False))
        value, kind = row.get("indicator"), row.get("indicator_type")
        if not value or not kind:
            yield BadLine(number, "missing indicator or indicator_type")
            continue
        comment = " — ".join(v for v in (row.get("meta.desc"), row.get("meta.source") and
                                          f"source {row['meta.source']}") if v)
        if kind == "Intel::DOMAIN":
            entry = domain_entry(number, value)
        elif kind in ("Intel::ADDR", "Intel::SUBNET"):
            entry = address_entry(number, value)
        elif kind == "Intel::URL":
            entry = value_entry(number, value if "://" in value else f"http://{value}")
        else:
            yield BadLine(number, f"{kind} is not supported (domains, addresses, subnets, URLs)")
            continue
        yield entry if isinstance(entry, BadLine) else replace(entry, comment=comment)

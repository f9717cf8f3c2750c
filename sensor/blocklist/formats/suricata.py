"""`suricata-dataset`: Suricata dataset files, typed by `dataset_type` in rules.yaml.

`string` (the default): one base64-encoded value per line, as Suricata writes
`dns.query` datasets. `ipv4`, `ipv6`, `ip`: one address per line. A datarep
file's `value,score` lines keep the value.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator, Mapping

from sensor.blocklist.formats.common import (
    BadLine,
    Parsed,
    address_entry,
    content_lines,
    domain_entry,
)

DATASET_TYPES = ("string", "ipv4", "ipv6", "ip")


def parse(text: str, options: Mapping[str, object]) -> Iterator[Parsed]:
    dataset_type = str(options.get("dataset_type") or "string")
    for number, line in content_lines(text.splitlines()):
        value = line.split(",", 1)[0].strip()
        if dataset_type != "string":
            entry = address_entry(number, value)
            version = 6 if ":" in value else 4
            if dataset_type in ("ipv4", "ipv6") and dataset_type != f"ipv{version}":
                entry = BadLine(number, f"{value!r} is not an {dataset_type} address")
            yield entry
            continue
        try:
            name = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            yield BadLine(number, "not base64 of a UTF-8 name (is dataset_type right?)")
            continue
        yield domain_entry(number, name)

"""`ips`: one IPv4/IPv6 address or CIDR per line."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from sensor.blocklist.formats import Parsed, address_entry, content_lines


def parse(lines: Iterable[str]) -> Iterator[Parsed]:
    for number, text in content_lines(lines):
        yield address_entry(number, text)

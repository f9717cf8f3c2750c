"""`ips`: one IPv4/IPv6 address or CIDR per line."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from sensor.blocklist.formats import Parsed, address_entry, content_lines


def parse(text: str, options: Mapping[str, object]) -> Iterator[Parsed]:
    for number, line in content_lines(text.splitlines()):
        yield address_entry(number, line)

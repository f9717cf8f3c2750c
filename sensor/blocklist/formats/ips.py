"""`ips`: one IPv4/IPv6 address or CIDR per line; `mixed`: names and addresses mixed."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from sensor.blocklist.formats.common import Parsed, address_entry, content_lines, value_entry


def parse(text: str, options: Mapping[str, object]) -> Iterator[Parsed]:
    for number, line in content_lines(text.splitlines()):
        yield address_entry(number, line)


def parse_mixed(text: str, options: Mapping[str, object]) -> Iterator[Parsed]:
    """Campaign letters often list names and addresses together, one per line."""
    for number, line in content_lines(text.splitlines()):
        yield value_entry(number, line)
